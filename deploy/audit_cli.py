"""`porchlight audit ...`: the auditors' commands, over the event store alone.

`verify` recomputes the tamper-evidence chain over the log and checks it against the heads
published to Kafka (deploy/audit_verify.py). `history` prints an account's or a workspace's history, read by the same function as the
staff API's history routes (services/invite_service/history.py), as JSON lines or CSV on
stdout, narrowed by time, type and actor; `state` prints an account as it stood at a
time, replayed from its events. They need only DATABASE_URL: an auditor reads the event
store, not Kafka and not the read models.
"""

from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from typing import Annotated
from uuid import UUID

import typer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from deploy.audit_verify import verify

audit_app = typer.Typer(help="Audit the event history: export it and verify its tamper-evidence chain.",
                        no_args_is_help=True)
audit_app.command("verify")(verify)

CSV_COLUMNS = ("position", "occurred_at", "aggregate", "aggregate_id", "version", "type",
               "actor_kind", "actor_id", "actor_reason", "data")


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str = Field(description="PostgreSQL holding the event store")


class Format(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


def _rfc3339(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an RFC 3339 time", param_hint=option) from None
    if parsed.tzinfo is None:  # a time without an offset would mean whatever this machine's zone is
        raise typer.BadParameter(f"{value!r} has no offset; add Z or +HH:MM", param_hint=option)
    return parsed


@audit_app.command("history")
def history(
    account: Annotated[UUID | None, typer.Option(help="An account's history (with its invitations)")] = None,
    workspace: Annotated[str | None, typer.Option(help="A workspace's own history (its settings changes)")] = None,
    since: Annotated[str | None, typer.Option(help="Only events at or after this RFC 3339 time")] = None,
    until: Annotated[str | None, typer.Option(help="Only events before this RFC 3339 time")] = None,
    types: Annotated[list[str] | None, typer.Option("--type", help="Only this event type (repeatable)")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor id, or kind: staff, client, system")] = None,
    output: Annotated[Format, typer.Option("--format", help="JSON lines, or CSV with a header row")] = Format.jsonl,
) -> None:
    """Print an account's or a workspace's history from the event store, oldest first."""
    if (account is None) == (workspace is None):
        raise typer.BadParameter("give --account ID or --workspace SLUG (one of them)")
    keep = _filter(since, until, types, actor)
    from services.invite_service import history as histories

    with _event_store() as app:
        if account is not None:
            events = histories.account_history(app, None, account)
        else:
            events = histories.workspace_history(app, workspace)
    _write([e for e in events if keep(e)], output)


@audit_app.command("state")
def state(
    account: Annotated[UUID, typer.Option(help="The account")],
    as_of: Annotated[str, typer.Option(help="RFC 3339 time with its offset")],
) -> None:
    """Print an account's state as of a time (JSON), replayed from its events up to then."""
    at = _rfc3339(as_of, "--as-of")
    from services.invite_service.point_in_time import account_as_of

    with _event_store() as app:
        sys.stdout.write(account_as_of(app, None, account, at).model_dump_json() + "\n")


@contextmanager
def _event_store():
    """The write side's Application over DATABASE_URL; a domain error (no such account) ends the command."""
    from deploy.cli import _settings
    from services.common.database import eventsourcing_env
    from services.invite_service.application import PortalAccess
    from services.invite_service.domain.errors import DomainError

    app = PortalAccess(eventsourcing_env(_settings(AuditSettings).database_url))
    try:
        yield app
    except DomainError as exc:
        typer.secho(exc.detail, fg="red", err=True)
        raise typer.Exit(1) from None
    finally:
        app.close()


def _filter(since: str | None, until: str | None, types: list[str] | None, actor: str | None):
    from services.invite_service.history import HistoryFilter

    return HistoryFilter(_rfc3339(since, "--since"), _rfc3339(until, "--until"), frozenset(types or ()), actor)


def _write(events, output: Format) -> None:
    if output is Format.jsonl:
        for event in events:
            sys.stdout.write(event.model_dump_json() + "\n")
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for event in events:
        row = event.model_dump(mode="json")
        writer.writerow([
            row["position"], row["occurred_at"], row["aggregate"], row["aggregate_id"], row["version"], row["type"],
            row["actor"]["kind"], row["actor"]["id"] or "", row["actor"]["reason"] or "",
            json.dumps(row["data"], sort_keys=True, separators=(",", ":")),
        ])
