"""The event history of an account or a workspace, read from the event store.

Read from the event store, never from Kafka or the projections: it is the only source of
truth, and an auditor must see what happened even if a consumer missed it. Each event is
shaped by the relay's own code (envelopes.py: the `contracts.access` payload models,
field by field), so the history shows exactly what `porchlight.access.v1` carries, minus
the fields in `WITHHELD`.

An account's history includes the aggregates that belong to it (its invitations, and
whatever later aggregates its events name), found without a lookup table: every UUID
in an account event's payload (AccountCreated's `invitation_id`, a resend's new
invitation...) is a candidate, and a candidate belongs to the account when its own
first event names the account (`account_id`). New event types that name a new
invitation are picked up with no change here.

The staff API (api/staff/history.py) and the auditors' CLI (`porchlight audit history`)
both read through these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from psycopg.sql import SQL, Identifier
from pydantic import BaseModel, ConfigDict, Field

from contracts.access import ACCOUNT_CREATED, INVITE_SENT, WORKSPACE_CREATED, Actor
from services.invite_service.domain import ids
from services.invite_service.domain.errors import AccountNotFound, WorkspaceNotFound
from services.invite_service.envelopes import Origin, to_envelope

# Payload fields the history leaves out although Kafka carries them, in every event type.
# A nonce (InviteSent's, and any later link's) is not a secret: a link is an HMAC over it
# with a key only Porchlight holds. But it is the one ingredient of a live link that is
# stored, history goes to every staff role (viewers included) and into auditors' exported
# files, which travel further than Kafka, and nobody auditing needs it (invitations are
# told apart by their id). So it stays out.
WITHHELD: frozenset[str] = frozenset({"nonce"})

# Aggregate class (as in an event's topic, `module:Class.Event`) → the name the history gives it.
_AGGREGATE_NAMES = {"PortalAccount": "account", "Invitation": "invitation", "Workspace": "workspace"}


class HistoryEvent(BaseModel):
    """One stored event, as its history shows it."""

    model_config = ConfigDict(frozen=True)

    position: int = Field(description="Position in the event store's notification log (the envelope's `position`)")
    aggregate: str = Field(description="`account`, `invitation` or `workspace`", examples=["invitation"])
    aggregate_id: UUID
    version: int = Field(ge=1, description="The event's version within its aggregate")
    type: str = Field(examples=[INVITE_SENT])
    occurred_at: datetime
    actor: Actor
    data: dict[str, Any] = Field(
        description="The event's payload as published on porchlight.access.v1 (its typed model in the AsyncAPI "
        "document), except any `nonce`; never a secret"
    )


class History(BaseModel):
    events: list[HistoryEvent] = Field(description="Oldest first (notification-log order)")


def account_history(app: Any, workspace: str | None, account_id: UUID) -> list[HistoryEvent]:
    """The account's events and those of the aggregates that belong to it, oldest first.

    `workspace` None (the auditors' CLI) skips the workspace check. AccountNotFound for an
    unknown id, an id that is not an account's, or another workspace's account: the same
    answer for each, so the answer does not tell which.
    """
    own = _notifications(app, [account_id])
    first = app.mapper.to_domain_event(own[0]) if own else None
    if type(first).__name__ != ACCOUNT_CREATED or (workspace is not None and first.workspace != workspace):
        raise AccountNotFound()
    origin: Origin = (first.workspace, account_id)
    records = [_record(app, n, origin) for n in own]
    named = _uuids(value for r in records for value in r.data.values()) - {account_id}
    related = [_record(app, n, origin) for n in _notifications(app, named)] if named else []
    belongs = {r.aggregate_id for r in related if r.version == 1 and r.data.get("account_id") == str(account_id)}
    records += [r for r in related if r.aggregate_id in belongs]
    return sorted(records, key=lambda r: r.position)


def workspace_history(app: Any, workspace: str) -> list[HistoryEvent]:
    """The workspace's own events (creation, settings changes with who made them), oldest first."""
    stored = _notifications(app, [ids.workspace_id(workspace)])
    if not stored or not stored[0].topic.endswith(f".{WORKSPACE_CREATED}"):
        raise WorkspaceNotFound()
    return [_record(app, n, (workspace, None)) for n in stored]


@dataclass(frozen=True)
class HistoryFilter:
    """What an auditor narrows a history to; every given condition must hold."""

    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    types: frozenset[str] = frozenset()
    actor: str | None = None  # an actor id (staff id, account id) or a kind: staff, client, system

    def __call__(self, event: HistoryEvent) -> bool:
        return (
            (self.since is None or event.occurred_at >= self.since)
            and (self.until is None or event.occurred_at < self.until)
            and (not self.types or event.type in self.types)
            and (self.actor is None or self.actor in (event.actor.id, event.actor.kind))
        )


def _record(app: Any, notification: Notification, origin: Origin) -> HistoryEvent:
    event = app.mapper.to_domain_event(notification)
    envelope = to_envelope(event, notification.id, origin)
    aggregate_class = notification.topic.rpartition(":")[2].split(".")[0]
    return HistoryEvent(
        position=notification.id,
        aggregate=_AGGREGATE_NAMES.get(aggregate_class, aggregate_class.lower()),
        aggregate_id=envelope.aggregate_id,
        version=envelope.aggregate_version,
        type=envelope.type,
        occurred_at=envelope.occurred_at,
        actor=envelope.actor,
        data=envelope.data.model_dump(mode="json", exclude=set(WITHHELD)),
    )


def _uuids(values: Iterable[Any]) -> set[UUID]:
    """The values that are UUIDs (payloads are in their JSON form, so UUIDs are strings)."""
    found = set()
    for value in values:
        if isinstance(value, str) and len(value) == 36:
            try:
                found.add(UUID(value))
            except ValueError:
                continue
    return found


def _notifications(app: Any, aggregate_ids: Iterable[UUID]) -> Sequence[Notification]:
    """Every stored event of these aggregates with its log position, in log order.

    The library's `select_events` gives one aggregate's events without their positions;
    the history needs both, across aggregates, so it asks the events table directly."""
    recorder = app.recorder
    statement = SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) ORDER BY notification_id"
    ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, [list(aggregate_ids)])
        return [
            Notification(
                id=row["notification_id"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]
