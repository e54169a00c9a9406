"""The staff status list (`account_status`): one row per portal account, from access events.

One typed handler per event type it shows, each taking that type's envelope; consumer.py
registers them on the access topic's subscriber (routed by the `type` header). Every other
type (workspace events, TokenClaimed, anything added later) is only recorded as applied.
Each handler's update and the applied-record commit in one transaction (projector.py).
Timestamps come from the events, so a replay rebuilds identical rows.
"""

from __future__ import annotations

import json
import logging
import uuid

import asyncpg

from contracts.access import (
    AccessDisabledV1,
    AccessEventV1,
    AccessReenabledV1,
    AccountActivatedV1,
    AccountCreatedV1,
    InviteResentV1,
    InviteRevokedV1,
    InviteSentV1,
    TripFirstSharedV1,
    TripSharedV1,
)
from projections import travelers
from projections.applied import applied_versions
from projections.projector import Projector, ProjectorContext
from services.common.event_routing import route

log = logging.getLogger(__name__)

PROJECTION = "status_list"


def _applying(projector: Projector, msg: AccessEventV1):
    # Every handler claims its event through here: with the event's log position (for
    # read-your-writes and the lag) and, when the projector can read the event store, a
    # repair of any versions of the aggregate that never arrived (a lost message).
    fill_gap = (lambda: _fill_gap(projector, msg)) if projector.event_source is not None else None
    return projector.applying(
        PROJECTION, msg.aggregate_id, msg.aggregate_version, msg.event_id, position=msg.position, fill_gap=fill_gap
    )


class GapNotRepaired(RuntimeError):
    """The event store does not have the versions a gap needs: never skip them silently."""


async def _fill_gap(projector: Projector, msg: AccessEventV1) -> None:
    """Apply, oldest first, the versions of `msg`'s aggregate before it that were never applied."""
    assert projector.event_source is not None and projector.pool is not None
    have = await applied_versions(projector.pool, PROJECTION, msg.aggregate_id, below=msg.aggregate_version)
    missing = [v for v in range(1, msg.aggregate_version) if v not in have]
    events = await projector.event_source(msg, missing)
    lacking = set(missing) - {e.aggregate_version for e in events}
    if lacking:
        raise GapNotRepaired(f"{msg.aggregate_id}: versions {sorted(lacking)} are not in the event store")
    handler_for = route(HANDLERS, otherwise=on_other_event)
    for event in sorted(events, key=lambda e: e.aggregate_version):
        await handler_for(event.type)(event, projector)


def _actor_name(event: AccessEventV1) -> str:
    return event.actor.id or event.actor.kind


# A contact seen in trip shares had a `not_invited` row (travelers.py); its first invite
# makes it pending (appended to the two upserts below), invited when the invite was, not
# when the trip was shared (their invited_at). In ON CONFLICT every right-hand side reads the old row.
_NOW_INVITED = """,
                status = CASE WHEN account_status.status = 'not_invited' THEN 'pending' ELSE account_status.status END
"""


# AccountCreated and InviteSent are written by one save, so they arrive in either order
# (and a replay may start between them): each upsert creates the row or fills in its own
# columns, keeps what the other already wrote, and takes the earliest invite time.
async def on_account_created(msg: AccountCreatedV1, projector: ProjectorContext) -> bool:
    """AccountCreated: the row, pending, with what staff filter and sort on."""
    d = msg.data
    async with _applying(projector, msg) as conn:
        if conn is None:
            return False  # applied before: change nothing
        await conn.execute(
            """
            INSERT INTO account_status (account_id, workspace, email, name, role, company, phone, contact_id,
                                        resources, status, invitation_id, invited_at, invited_by, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, 'pending', $10, $11, $12, $11)
            ON CONFLICT (account_id) DO UPDATE SET
                email = EXCLUDED.email, name = EXCLUDED.name, role = EXCLUDED.role, company = EXCLUDED.company,
                phone = EXCLUDED.phone, contact_id = EXCLUDED.contact_id, resources = EXCLUDED.resources,
                invitation_id = COALESCE(account_status.invitation_id, EXCLUDED.invitation_id),
                invited_at = CASE WHEN account_status.status = 'not_invited' THEN EXCLUDED.invited_at
                                  ELSE LEAST(account_status.invited_at, EXCLUDED.invited_at) END,
                invited_by = COALESCE(account_status.invited_by, EXCLUDED.invited_by),
                updated_at = GREATEST(account_status.updated_at, EXCLUDED.updated_at)
            """ + _NOW_INVITED,
            msg.aggregate_id,
            msg.workspace,
            d.email,
            d.name,
            d.role,
            d.company,
            d.phone,
            d.contact_id,
            json.dumps([resource.model_dump(mode="json") for resource in d.resources]),
            d.invitation_id,
            msg.occurred_at,
            _actor_name(msg),
        )
        await _catch_up_deliveries(conn, msg.aggregate_id)
    return True


async def on_invite_sent(msg: InviteSentV1, projector: ProjectorContext) -> bool:
    """InviteSent: who invited and when, and the newest invite's expiry."""
    d = msg.data
    account_id = msg.account_id or d.account_id
    async with _applying(projector, msg) as conn:
        if conn is None:
            return False
        # Only the newest invite's link and expiry count; an older one applied late changes neither.
        await conn.execute(
            """
            INSERT INTO account_status (account_id, workspace, email, name, status, invitation_id, invited_at,
                                        invited_by, last_invite_sent_at, expires_at, updated_at)
            VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $6, $8, $6)
            ON CONFLICT (account_id) DO UPDATE SET
                email = COALESCE(account_status.email, EXCLUDED.email),
                name = COALESCE(account_status.name, EXCLUDED.name),
                invited_at = CASE WHEN account_status.status = 'not_invited' THEN EXCLUDED.invited_at
                                  ELSE LEAST(account_status.invited_at, EXCLUDED.invited_at) END,
                invited_by = COALESCE(account_status.invited_by, EXCLUDED.invited_by),
                invitation_id = CASE WHEN account_status.last_invite_sent_at > EXCLUDED.last_invite_sent_at
                                     THEN account_status.invitation_id ELSE EXCLUDED.invitation_id END,
                expires_at = CASE WHEN account_status.last_invite_sent_at > EXCLUDED.last_invite_sent_at
                                  THEN account_status.expires_at ELSE EXCLUDED.expires_at END,
                last_invite_sent_at = GREATEST(account_status.last_invite_sent_at, EXCLUDED.last_invite_sent_at),
                updated_at = GREATEST(account_status.updated_at, EXCLUDED.updated_at)
            """ + _NOW_INVITED,
            account_id,
            msg.workspace,
            d.email,
            d.name,
            msg.aggregate_id,
            msg.occurred_at,
            _actor_name(msg),
            d.expires_at,
        )
        await _catch_up_deliveries(conn, account_id)
    return True


async def on_account_activated(msg: AccountActivatedV1, projector: ProjectorContext) -> bool:
    """AccountActivated: the account is active from the claim on."""
    async with _applying(projector, msg) as conn:
        if conn is None:
            return False
        updated = await conn.execute(
            "UPDATE account_status SET status = 'active', activated_at = $2, "
            "updated_at = GREATEST(updated_at, $2) WHERE account_id = $1",
            msg.aggregate_id,
            msg.occurred_at,
        )
    if updated == "UPDATE 0":
        # Cannot happen in partition order (AccountCreated comes first); say so, but do not
        # block the partition retrying an event that can never apply.
        log.warning("AccountActivated for unknown account %s (event %s)", msg.aggregate_id, msg.event_id)
    return True


async def on_other_event(msg: AccessEventV1, projector: ProjectorContext) -> bool:
    """Every other event type: nothing to show, only recorded as applied."""
    async with _applying(projector, msg) as conn:
        return conn is not None


# Staff actions. Each is an event of the account aggregate, so they arrive in the order they
# happened (one partition per account). A resend's or reactivate's new link, expiry and
# send time come with its own InviteSent (on_invite_sent); InvitationVoided and
# PasswordResetRequested change nothing the list shows.


async def _set_status(projector: ProjectorContext, msg: AccessEventV1, sql_set: str, *args: object) -> bool:
    async with _applying(projector, msg) as conn:
        if conn is None:
            return False
        updated = await conn.execute(
            f"UPDATE account_status SET {sql_set}, updated_at = GREATEST(updated_at, $2) WHERE account_id = $1",
            msg.aggregate_id,
            msg.occurred_at,
            *args,
        )
    if updated == "UPDATE 0":  # as for AccountActivated: cannot happen in partition order
        log.warning("%s for unknown account %s (event %s)", msg.type, msg.aggregate_id, msg.event_id)
    return True


async def on_invite_revoked(msg: InviteRevokedV1, projector: ProjectorContext) -> bool:
    """InviteRevoked: the pending invite was cancelled and the account disabled."""
    return await _set_status(
        projector, msg, "status = 'disabled', disabled_at = $3, disabled_by = $4, disabled_reason = NULL",
        msg.data.at, _actor_name(msg),
    )


async def on_access_disabled(msg: AccessDisabledV1, projector: ProjectorContext) -> bool:
    """AccessDisabled: who disabled the account, when, and why (the reason staff typed, if any)."""
    return await _set_status(
        projector, msg, "status = 'disabled', disabled_at = $3, disabled_by = $4, disabled_reason = $5",
        msg.data.at, _actor_name(msg), msg.data.reason,
    )


async def on_access_reenabled(msg: AccessReenabledV1, projector: ProjectorContext) -> bool:
    """AccessReenabled: back to pending or active; no longer disabled by anyone."""
    return await _set_status(
        projector, msg, "status = $3, disabled_at = NULL, disabled_by = NULL, disabled_reason = NULL", msg.data.status
    )


async def on_invite_resent(msg: InviteResentV1, projector: ProjectorContext) -> bool:
    """InviteResent: the account is pending on a fresh invitation (its InviteSent fills in the rest)."""
    return await _set_status(projector, msg, "status = 'pending'")


async def on_trip_first_shared(msg: TripFirstSharedV1, projector: ProjectorContext) -> bool:
    """TripFirstShared: the trip's travelers, and a not_invited row for each contact without an account."""
    async with _applying(projector, msg) as conn:
        if conn is None:
            return False
        await travelers.record(conn, msg)
    return True


async def on_trip_shared(msg: TripSharedV1, projector: ProjectorContext) -> bool:
    """TripShared: a later share's travelers, likewise."""
    async with _applying(projector, msg) as conn:
        if conn is None:
            return False
        await travelers.record(conn, msg)
    return True


HANDLERS = (
    on_account_created,
    on_invite_sent,
    on_account_activated,
    on_invite_revoked,
    on_access_disabled,
    on_access_reenabled,
    on_invite_resent,
    on_trip_first_shared,
    on_trip_shared,
)


async def _catch_up_deliveries(conn: asyncpg.Connection, account_id: uuid.UUID) -> None:
    """Deliveries come on another topic and may be projected before the account row exists."""
    await conn.execute(
        """
        UPDATE account_status s SET last_delivery_status = d.status, last_delivery_at = d.at
        FROM (SELECT status, at FROM account_deliveries WHERE account_id = $1
              ORDER BY at DESC, attempt DESC LIMIT 1) d
        WHERE s.account_id = $1 AND s.last_delivery_at IS DISTINCT FROM d.at
        """,
        account_id,
    )
