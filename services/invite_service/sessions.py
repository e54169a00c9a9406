"""Portal sessions: opaque cookie values, stored only as their SHA-256, ended server side.

A session starts inside the command that grants it (a claim, a sign-in): `new` makes the
cookie value and the row to store, and the row commits in the same transaction as the
command's events (see event_store.py), so a client holds a session exactly when the
sign-in stands.

A session is good while it is neither ended (sign-out, the host app's DELETE) nor past its
idle or absolute lifetime, and while its account is active at the access epoch the session
began in: disable, revoke and a password reset move the account on, which ends every
session on its next request. That account state is read from `portal_account_access`, a
row written in the transaction of the account's own events (`access_row`), so checking a
session costs one indexed statement however long the account's history grows.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.invite_service.event_store import SideRow

COOKIE_NAME = "porchlight_session"
ABSOLUTE_LIFETIME = timedelta(days=30)
IDLE_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    session_id: UUID
    workspace: str
    account_id: UUID
    access_epoch: int
    expires_at: datetime
    email: str = ""
    name: str | None = None
    role: str = ""
    resources: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"account_id": str(self.account_id), "email": self.email, "name": self.name, "role": self.role,
                "resources": self.resources}


@dataclass(frozen=True)
class NewSession:
    cookie: str = field(repr=False)  # stored nowhere, never logged
    session_id: UUID
    row: SideRow


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def new(workspace: str, account_id: UUID, access_epoch: int, method: str,
        absolute: timedelta = ABSOLUTE_LIFETIME) -> NewSession:
    """A fresh cookie value, which is stored nowhere, and the row that makes it a session."""
    value = secrets.token_urlsafe(32)
    session_id = uuid4()
    row = SideRow(
        "INSERT INTO portal_sessions (session_hash, session_id, workspace, account_id, access_epoch, method, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (_hash(value), session_id, workspace, account_id, access_epoch, method, datetime.now(UTC) + absolute),
    )
    return NewSession(value, session_id, row)


def access_row(account: Any) -> SideRow:
    """The account's state as session checks need it; only ever moves forward (by version),
    so rows written by two racing commands cannot leave the older state behind."""
    return SideRow(
        "INSERT INTO portal_account_access AS a "
        "(account_id, workspace, email, name, role, resources, status, access_epoch, version) "
        "VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s) "
        "ON CONFLICT (account_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, role = EXCLUDED.role, "
        "resources = EXCLUDED.resources, status = EXCLUDED.status, access_epoch = EXCLUDED.access_epoch, "
        "version = EXCLUDED.version WHERE a.version < EXCLUDED.version",
        (account.id, account.workspace, account.email, account.name, account.role, json.dumps(account.resources),
         account.status, account.access_epoch, account.version),
    )


_LIVE = (
    "s.ended_at IS NULL AND s.expires_at > now() AND s.last_seen_at > now() - $3::interval "
    "AND a.account_id = s.account_id AND a.status = 'active' AND a.access_epoch = s.access_epoch"
)
_RETURNING = (
    "RETURNING s.session_id, s.workspace, s.account_id, s.access_epoch, s.expires_at, "
    "a.email, a.name, a.role, a.resources"
)


def _session(row: asyncpg.Record | None) -> Session | None:
    if row is None:
        return None
    resources = row["resources"]
    return Session(row["session_id"], row["workspace"], row["account_id"], row["access_epoch"], row["expires_at"],
                   row["email"], row["name"], row["role"], json.loads(resources) if isinstance(resources, str) else resources)


async def find(pool: asyncpg.Pool, workspace: str, value: str | None, idle: timedelta = IDLE_LIFETIME) -> Session | None:
    """The live session a cookie names (and note it was used now), or None."""
    if not value or len(value) > 100:
        return None
    row = await pool.fetchrow(
        f"UPDATE portal_sessions s SET last_seen_at = now() FROM portal_account_access a "
        f"WHERE s.session_hash = $1 AND s.workspace = $2 AND {_LIVE} {_RETURNING}",
        _hash(value), workspace, idle,
    )
    return _session(row)


async def by_id(pool: asyncpg.Pool, workspace: str, session_id: UUID, idle: timedelta = IDLE_LIFETIME) -> Session | None:
    """The same check by the session's public id, for the host app (which never sees the cookie)."""
    row = await pool.fetchrow(
        f"UPDATE portal_sessions s SET last_seen_at = now() FROM portal_account_access a "
        f"WHERE s.session_id = $1 AND s.workspace = $2 AND {_LIVE} {_RETURNING}",
        session_id, workspace, idle,
    )
    return _session(row)


async def end(pool: asyncpg.Pool, value: str | None) -> None:
    if value and len(value) <= 100:
        await pool.execute("UPDATE portal_sessions SET ended_at = now() WHERE session_hash = $1 AND ended_at IS NULL",
                           _hash(value))


async def end_by_id(pool: asyncpg.Pool, workspace: str, session_id: UUID) -> bool:
    done = await pool.execute(
        "UPDATE portal_sessions SET ended_at = now() WHERE session_id = $1 AND workspace = $2 AND ended_at IS NULL",
        session_id, workspace,
    )
    return done != "UPDATE 0"
