"""The staff status list (`account_status`): one row per portal account, from access events.

One branch per event type, registered with `@branch("Type")`. Types without a branch
(workspace events, TokenClaimed, anything added later) are only recorded as applied.
Timestamps come from the events, so a replay rebuilds identical rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import TypeAdapter

from contracts.access import ACCOUNT_ACTIVATED, ACCOUNT_CREATED, INVITE_SENT, AccessEventV1
from projections.applied import record_applied

log = logging.getLogger(__name__)

PROJECTION = "status_list"

Branch = Callable[[asyncpg.Connection, AccessEventV1], Awaitable[None]]
_BRANCHES: dict[str, Branch] = {}

# `data` arrives as JSON (strings) from Kafka, but tests and replays may hand in datetimes.
_datetime = TypeAdapter(datetime)


def branch(event_type: str) -> Callable[[Branch], Branch]:
    def register(fn: Branch) -> Branch:
        _BRANCHES[event_type] = fn
        return fn

    return register


async def apply(conn: asyncpg.Connection, event: AccessEventV1) -> bool:
    """Apply one event in one transaction; False (and nothing changed) if it was applied before."""
    async with conn.transaction():
        if not await record_applied(conn, PROJECTION, event.aggregate_id, event.aggregate_version, event.event_id):
            return False
        handler = _BRANCHES.get(event.type)
        if handler is not None:
            await handler(conn, event)
    return True


def _actor_name(event: AccessEventV1) -> str:
    return event.actor.id or event.actor.kind


def _when(value: Any) -> datetime | None:
    return None if value is None else _datetime.validate_python(value)


# AccountCreated and InviteSent are written by one save, so they arrive in either order
# (and a replay may start between them): each upsert creates the row or fills in its own
# columns, keeps what the other already wrote, and takes the earliest invite time.
@branch(ACCOUNT_CREATED)
async def _account_created(conn: asyncpg.Connection, event: AccessEventV1) -> None:
    d = event.data
    await conn.execute(
        """
        INSERT INTO account_status (account_id, workspace, email, name, role, company, phone, contact_id,
                                    resources, status, invitation_id, invited_at, invited_by, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, 'pending', $10, $11, $12, $11)
        ON CONFLICT (account_id) DO UPDATE SET
            email = EXCLUDED.email, name = EXCLUDED.name, role = EXCLUDED.role, company = EXCLUDED.company,
            phone = EXCLUDED.phone, contact_id = EXCLUDED.contact_id, resources = EXCLUDED.resources,
            invitation_id = COALESCE(account_status.invitation_id, EXCLUDED.invitation_id),
            invited_at = LEAST(account_status.invited_at, EXCLUDED.invited_at),
            invited_by = COALESCE(account_status.invited_by, EXCLUDED.invited_by),
            updated_at = GREATEST(account_status.updated_at, EXCLUDED.updated_at)
        """,
        event.aggregate_id,
        event.workspace,
        d.get("email"),
        d.get("name"),
        d.get("role"),
        d.get("company"),
        d.get("phone"),
        d.get("contact_id"),
        json.dumps(d.get("resources") or []),
        d.get("invitation_id"),
        event.occurred_at,
        _actor_name(event),
    )
    await _catch_up_deliveries(conn, event.aggregate_id)


@branch(INVITE_SENT)
async def _invite_sent(conn: asyncpg.Connection, event: AccessEventV1) -> None:
    d = event.data
    # Only the newest invite's link and expiry count; an older one applied late changes neither.
    await conn.execute(
        """
        INSERT INTO account_status (account_id, workspace, email, name, status, invitation_id, invited_at,
                                    invited_by, last_invite_sent_at, expires_at, updated_at)
        VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $6, $8, $6)
        ON CONFLICT (account_id) DO UPDATE SET
            email = COALESCE(account_status.email, EXCLUDED.email),
            name = COALESCE(account_status.name, EXCLUDED.name),
            invited_at = LEAST(account_status.invited_at, EXCLUDED.invited_at),
            invited_by = COALESCE(account_status.invited_by, EXCLUDED.invited_by),
            invitation_id = CASE WHEN account_status.last_invite_sent_at > EXCLUDED.last_invite_sent_at
                                 THEN account_status.invitation_id ELSE EXCLUDED.invitation_id END,
            expires_at = CASE WHEN account_status.last_invite_sent_at > EXCLUDED.last_invite_sent_at
                              THEN account_status.expires_at ELSE EXCLUDED.expires_at END,
            last_invite_sent_at = GREATEST(account_status.last_invite_sent_at, EXCLUDED.last_invite_sent_at),
            updated_at = GREATEST(account_status.updated_at, EXCLUDED.updated_at)
        """,
        event.account_id or d.get("account_id"),
        event.workspace,
        d.get("email"),
        d.get("name"),
        event.aggregate_id,
        event.occurred_at,
        _actor_name(event),
        _when(d.get("expires_at")),
    )
    await _catch_up_deliveries(conn, event.account_id or d.get("account_id"))


@branch(ACCOUNT_ACTIVATED)
async def _account_activated(conn: asyncpg.Connection, event: AccessEventV1) -> None:
    updated = await conn.execute(
        "UPDATE account_status SET status = 'active', activated_at = $2, "
        "updated_at = GREATEST(updated_at, $2) WHERE account_id = $1",
        event.aggregate_id,
        event.occurred_at,
    )
    if updated == "UPDATE 0":
        # Cannot happen in partition order (AccountCreated comes first); say so, but do not
        # block the partition retrying an event that can never apply.
        log.warning("AccountActivated for unknown account %s (event %s)", event.aggregate_id, event.event_id)


async def _catch_up_deliveries(conn: asyncpg.Connection, account_id: Any) -> None:
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
