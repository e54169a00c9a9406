"""Reads of the status list: filters, keyset pagination, one account with its deliveries.

Pagination is by keyset on (invited_at, account_id), newest first, so a page never
repeats or skips rows when accounts are added while someone is paging.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

# The actions staff may take on an account in each state (mirrors PortalAccount.allowed_actions).
ACTIONS: dict[str, list[str]] = {
    "not_invited": ["invite"],
    "pending": ["resend", "revoke"],
    "active": ["disable", "password-reset"],
    "disabled": ["reenable", "reactivate"],
}

_COLUMNS = """account_id, workspace, email, name, role, company, phone, contact_id, resources, status,
    invited_at, invited_by, last_invite_sent_at, expires_at, activated_at, disabled_at, disabled_by,
    last_sign_in_at, sign_ins, last_delivery_status, updated_at"""


class BadCursor(ValueError):
    """The cursor was not one this API handed out."""


@dataclass(frozen=True)
class AccountFilter:
    status: str | None = None
    email: str | None = None
    q: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None


def encode_cursor(invited_at: datetime, account_id: uuid.UUID) -> str:
    raw = json.dumps([invited_at.isoformat(), str(account_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, account_id = json.loads(raw)
        invited_at = datetime.fromisoformat(at)
        if invited_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return invited_at, uuid.UUID(account_id)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise BadCursor(str(exc)) from None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_view(row: asyncpg.Record) -> dict[str, Any]:
    view = dict(row)
    view["resources"] = json.loads(view["resources"]) if isinstance(view["resources"], str) else view["resources"]
    view["actions"] = ACTIONS.get(view["status"], [])
    return view


async def list_accounts(
    pool: asyncpg.Pool, workspace: str, filters: AccountFilter, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a workspace's accounts, newest invite first, and the cursor of the next page."""
    where = ["workspace = $1"]
    args: list[Any] = [workspace]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if filters.status:
        where.append(f"status = {arg(filters.status)}")
    if filters.email:
        where.append(f"lower(email) = lower({arg(filters.email)})")
    if filters.q:
        pattern = arg(f"%{_escape_like(filters.q)}%")
        where.append(f"(name ILIKE {pattern} OR email ILIKE {pattern} OR company ILIKE {pattern})")
    if filters.resource_type and filters.resource_id:
        wanted = [{"type": filters.resource_type, "id": filters.resource_id}]
        where.append(f"resources @> {arg(json.dumps(wanted))}::jsonb")
    if cursor:
        after_at, after_id = decode_cursor(cursor)
        where.append(f"(invited_at, account_id) < ({arg(after_at)}, {arg(after_id)})")

    # One row more than asked tells whether there is a next page without a count query.
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM account_status WHERE {' AND '.join(where)} "
        f"ORDER BY invited_at DESC, account_id DESC LIMIT {arg(limit + 1)}",
        *args,
    )
    page = [_as_view(r) for r in rows[:limit]]
    next_cursor = encode_cursor(page[-1]["invited_at"], page[-1]["account_id"]) if len(rows) > limit else None
    return page, next_cursor


async def get_account(pool: asyncpg.Pool, workspace: str, account_id: uuid.UUID) -> dict[str, Any] | None:
    """One account with its delivery attempts (newest first), or None if not in this workspace."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM account_status WHERE workspace = $1 AND account_id = $2", workspace, account_id
    )
    if row is None:
        return None
    view = _as_view(row)
    view["deliveries"] = [
        dict(r)
        for r in await pool.fetch(
            "SELECT channel, provider, status, attempt, error, at FROM account_deliveries "
            "WHERE account_id = $1 AND workspace = $2 ORDER BY at DESC, attempt DESC LIMIT 50",
            account_id,
            workspace,
        )
    ]
    # Sign-in history arrives with the SignedIn projection; the field is part of the API already.
    view["recent_sign_ins"] = []
    return view
