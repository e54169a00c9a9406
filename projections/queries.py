"""Reads of the status list: filters, sorts, keyset pagination, counts, one account.

Pagination is by keyset on (sort key, account_id): a page starts strictly after the last
row of the previous one, so it never repeats or skips rows when accounts are added while
someone is paging. Each sort key is an expression with an index of its own (schema.sql);
the expressions here and there must stay identical, or the planner stops using them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from contracts.account_actions import allowed_actions

Sort = Literal["invited_at", "name", "last_sign_in_at"]
Order = Literal["asc", "desc"]

# Sort name → the indexed expression (schema.sql) and how its cursor value is (de)serialised.
SORT_KEYS: dict[str, str] = {
    "invited_at": "invited_at",
    "name": "(lower(COALESCE(name, email, '')) COLLATE \"C\")",
    "last_sign_in_at": "COALESCE(last_sign_in_at, '-infinity'::timestamptz)",
}
_TIME_SORTS = {"invited_at", "last_sign_in_at"}
NEVER = "-infinity"

# A pending account whose newest link has lapsed: ops look for "invited, never claimed".
LINK_EXPIRED = "(status = 'pending' AND expires_at IS NOT NULL AND expires_at < now())"
SEARCH_TEXT = "(COALESCE(name, '') || E'\\x1f' || COALESCE(email, '') || E'\\x1f' || COALESCE(company, ''))"

_COLUMNS = f"""account_id, workspace, email, name, role, company, phone, contact_id, resources, status,
    invited_at, invited_by, last_invite_sent_at, expires_at, activated_at, disabled_at, disabled_by, disabled_reason,
    last_sign_in_at, sign_ins, last_delivery_status, last_delivery_at, updated_at,
    {LINK_EXPIRED} AS link_expired"""


class BadCursor(ValueError):
    """The cursor was not one this API handed out (or was made for another sort)."""


@dataclass(frozen=True)
class AccountFilter:
    status: str | None = None
    email: str | None = None
    q: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    link_expired: bool | None = None


@dataclass(frozen=True)
class Ordering:
    sort: Sort = "invited_at"
    order: Order = "desc"


def encode_cursor(ordering: Ordering, key: Any, account_id: uuid.UUID) -> str:
    if isinstance(key, datetime):
        # asyncpg reads -infinity (never signed in) as a naive datetime.min, and writes it back.
        value = NEVER if key == datetime.min else key.isoformat()
    else:
        value = key
    raw = json.dumps([ordering.sort, ordering.order, value, str(account_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, ordering: Ordering) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort, order, value, account_id = json.loads(raw)
        if (sort, order) != (ordering.sort, ordering.order):
            raise ValueError("cursor of another sort")
        if ordering.sort in _TIME_SORTS and value == NEVER:
            key = datetime.min
        elif ordering.sort in _TIME_SORTS:
            key = datetime.fromisoformat(value)
            if key.tzinfo is None:
                raise ValueError("naive timestamp")
        elif isinstance(value, str):
            key = value
        else:
            raise ValueError("not a name")
        return key, uuid.UUID(account_id)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise BadCursor(str(exc)) from None


# A run of digits in a search term: a phone number, a booking reference, the number in an
# email. Rows rarely share one, while words (a surname, a company, an email domain) may be in
# every row.
_DIGITS = re.compile(r"\d{3,}")


def _search(where: _Where, q: str) -> list[str]:
    """The free-text condition: the term anywhere in the name, email or company.

    The trigram index (schema.sql) answers `ILIKE '%term%'` by intersecting the lists of rows
    of every trigram of the term, and reading the list of a trigram that nearly every row has
    (the "per" of a shared word) costs most of a page's time. So a term with a run of digits
    next to letters looks up the digits in the index (a short list) and checks the whole term
    on the rows found; written over `SEARCH_TEXT || ''`, which no index matches, that check
    cannot pull the common trigrams back into the index scan. Same rows either way."""
    digits = max(_DIGITS.findall(q), key=len, default=None)
    if digits is None or digits == q.strip():
        return [f"{SEARCH_TEXT} ILIKE {where.arg(f'%{_escape_like(q)}%')}"]
    return [f"{SEARCH_TEXT} ILIKE {where.arg(f'%{digits}%')}",
            f"({SEARCH_TEXT} || '') ILIKE {where.arg(f'%{_escape_like(q)}%')}"]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_view(row: asyncpg.Record) -> dict[str, Any]:
    view = dict(row)
    view["resources"] = json.loads(view["resources"]) if isinstance(view["resources"], str) else view["resources"]
    view["actions"] = allowed_actions(view["status"])
    return view


class _Where:
    """WHERE clauses and their numbered arguments, built together."""

    def __init__(self, workspace: str) -> None:
        self.args: list[Any] = [workspace]
        self.clauses = ["workspace = $1"]

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def sql(self) -> str:
        return " AND ".join(self.clauses)


def _filtered(workspace: str, filters: AccountFilter) -> _Where:
    where = _Where(workspace)
    if filters.status:
        where.clauses.append(f"status = {where.arg(filters.status)}")
    if filters.email:
        where.clauses.append(f"lower(email) = lower({where.arg(filters.email)})")
    if filters.q:
        where.clauses.extend(_search(where, filters.q))
    if filters.resource_type and filters.resource_id:
        wanted = [{"type": filters.resource_type, "id": filters.resource_id}]
        where.clauses.append(f"resources @> {where.arg(json.dumps(wanted))}::jsonb")
    if filters.link_expired is not None:
        where.clauses.append(LINK_EXPIRED if filters.link_expired else f"NOT {LINK_EXPIRED}")
    return where


async def list_accounts(
    pool: asyncpg.Pool,
    workspace: str,
    filters: AccountFilter,
    limit: int,
    cursor: str | None,
    ordering: Ordering = Ordering(),
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a workspace's accounts in `ordering`, and the cursor of the next page."""
    where = _filtered(workspace, filters)
    key = SORT_KEYS[ordering.sort]
    direction, after = ("DESC", "<") if ordering.order == "desc" else ("ASC", ">")
    if cursor:
        after_key, after_id = decode_cursor(cursor, ordering)
        where.clauses.append(f"({key}, account_id) {after} ({where.arg(after_key)}, {where.arg(after_id)})")

    # One row more than asked tells whether there is a next page without a count query.
    select = f"SELECT {_COLUMNS}, {key} AS sort_key FROM account_status WHERE {where.sql()}"
    if filters.resource_type and filters.resource_id:
        # A resource's accounts are few: find them by the resources index, then sort. Left to
        # itself the planner sometimes walks the sort key's index instead, filtering row by row
        # until a page is full (tens of ms on 100,000 accounts).
        select = f"WITH matched AS MATERIALIZED ({select}) SELECT * FROM matched"
        key = "sort_key"
    rows = await pool.fetch(
        f"{select} ORDER BY {key} {direction}, account_id {direction} LIMIT {where.arg(limit + 1)}",
        *where.args,
    )
    page = [_as_view(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(ordering, last["sort_key"], last["account_id"])
    return page, next_cursor


async def count_by_status(pool: asyncpg.Pool, workspace: str) -> dict[str, int]:
    """How many accounts are in each state, and how many pending ones have a lapsed link."""
    # Two scans that each stay in an index (schema.sql): per state, and pending by expiry.
    rows = await pool.fetch(
        "SELECT status, count(*) AS n FROM account_status WHERE workspace = $1 GROUP BY status", workspace
    )
    expired = await pool.fetchval(
        f"SELECT count(*) FROM account_status WHERE workspace = $1 AND {LINK_EXPIRED}", workspace
    )
    counts = {status: 0 for status in ("not_invited", "pending", "active", "disabled")}
    counts.update({r["status"]: r["n"] for r in rows})
    return {**counts, "link_expired": expired, "total": sum(r["n"] for r in rows)}


ACTIVE_COLUMNS = (
    "account_id", "email", "name", "role", "company", "resources", "activated_at", "last_sign_in_at", "sign_ins",
)


async def active_accounts(pool: asyncpg.Pool, workspace: str, chunk: int = 1000) -> AsyncIterator[asyncpg.Record]:
    """Every active account of the workspace, by name, read in chunks (a server-side cursor),
    so an export of any size holds one chunk in memory."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for row in conn.cursor(
            f"SELECT {', '.join(ACTIVE_COLUMNS)} FROM account_status WHERE workspace = $1 AND status = 'active' "
            f"ORDER BY {SORT_KEYS['name']}, account_id",
            workspace,
            prefetch=chunk,
        ):
            yield row


async def get_account(pool: asyncpg.Pool, workspace: str, account_id: uuid.UUID) -> dict[str, Any] | None:
    """One account with its delivery attempts (newest first), or None if not in this workspace."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS}, recent_sign_ins FROM account_status WHERE workspace = $1 AND account_id = $2",
        workspace, account_id,
    )
    if row is None:
        return None
    view = _as_view(row)
    view["deliveries"] = [
        dict(r)
        for r in await pool.fetch(
            "SELECT channel, provider, status, attempt, audience, error, at, held FROM account_deliveries "
            "WHERE account_id = $1 AND workspace = $2 ORDER BY at DESC, attempt DESC LIMIT 50",
            account_id,
            workspace,
        )
    ]
    # Mail is held while the newest email outcome says its address is on the suppression list.
    newest_email = next((d for d in view["deliveries"] if d["channel"] == "email" and d["audience"] == "client"), None)
    view["email_held"] = newest_email["held"] if newest_email else None
    for delivery in view["deliveries"]:
        delivery.pop("held")
    view["recent_sign_ins"] = _json_list(row["recent_sign_ins"])
    return view


def _json_list(value: object) -> list:
    return json.loads(value) if isinstance(value, str) else list(value or [])
