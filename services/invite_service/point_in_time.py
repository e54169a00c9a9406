"""An account's state as of a past time, replayed from the event store.

The aggregate itself is rebuilt from its events up to that time, so the state (and the
actions it allowed then) come from the same code as today's, not from a second copy of
the state machine. Timestamps are read off the replay: when the status became active or
disabled, and by whom it was disabled, whatever event types did it.
"""

from __future__ import annotations

from datetime import datetime
from itertools import takewhile
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate

from contracts.access import ACCOUNT_CREATED, Actor
from contracts.account_state import AccountAsOf
from services.invite_service.domain.errors import AccountNotFound
from services.invite_service.domain.portal_account import ACTIVE, DISABLED

__all__ = ["AccountAsOf", "account_as_of"]


def account_as_of(app: Any, workspace: str | None, account_id: UUID, at: datetime) -> AccountAsOf:
    """AccountNotFound for an unknown or foreign account, and for one not yet created at `at`.
    `workspace` None (the auditors' CLI) skips the workspace check."""
    events = _events_until(app, account_id, at)
    if not events or type(events[0]).__name__ != ACCOUNT_CREATED or workspace not in (None, events[0].workspace):
        raise AccountNotFound()
    account = None
    activated_at = disabled_at = disabled_by = None
    for event in events:
        before = getattr(account, "status", None)
        account = event.mutate(account)
        if account.status != before and account.status == ACTIVE and activated_at is None:
            activated_at = event.timestamp
        if account.status != before and account.status == DISABLED:
            disabled_at, disabled_by = event.timestamp, Actor.model_validate(event.actor)
    if account.status != DISABLED:
        disabled_at = disabled_by = None
    invitation_id = getattr(account, "invitation_id", None)
    invitation = project_aggregate(None, _events_until(app, invitation_id, at)) if invitation_id else None
    return AccountAsOf(
        account_id=account_id,
        as_of=at,
        version=account.version,
        status=account.status,
        email=account.email,
        name=account.name,
        role=account.role,
        company=account.company,
        phone=account.phone,
        resources=account.resources,
        invited_at=account.created_on,
        invitation_id=invitation_id,
        expires_at=getattr(invitation, "expires_at", None),
        activated_at=activated_at,
        disabled_at=disabled_at,
        disabled_by=disabled_by,
        disabled_reason=getattr(account, "disabled_reason", None),
        actions=account.allowed_actions,
    )


def _events_until(app: Any, aggregate_id: UUID, at: datetime) -> list[Any]:
    # A prefix of the aggregate's events: replaying any other selection would be a state it never had.
    events = (app.mapper.to_domain_event(stored) for stored in app.recorder.select_events(aggregate_id))
    return list(takewhile(lambda event: event.timestamp <= at, events))
