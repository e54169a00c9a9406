"""Portal sessions: opaque cookie values, stored only as their SHA-256, ended server side.

A session starts inside the command that grants it (a claim): `new` makes the cookie value
and the row to store, and the row commits in the same transaction as the command's events
(see event_store.py), so a client holds a session exactly when the claim stands.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from services.invite_service.event_store import SideRow

COOKIE_NAME = "porchlight_session"
ABSOLUTE_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class Session:
    workspace: str
    account_id: UUID
    access_epoch: int


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def new(workspace: str, account_id: UUID, access_epoch: int, method: str) -> tuple[str, SideRow]:
    """A fresh cookie value, which is stored nowhere, and the row that makes it a session."""
    value = secrets.token_urlsafe(32)
    row = SideRow(
        "INSERT INTO portal_sessions (session_hash, workspace, account_id, access_epoch, method, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (_hash(value), workspace, account_id, access_epoch, method, datetime.now(UTC) + ABSOLUTE_LIFETIME),
    )
    return value, row


async def find(pool: asyncpg.Pool, workspace: str, value: str | None) -> Session | None:
    if not value or len(value) > 100:
        return None
    row = await pool.fetchrow(
        "UPDATE portal_sessions SET last_seen_at = now() "
        "WHERE session_hash = $1 AND workspace = $2 AND ended_at IS NULL AND expires_at > now() "
        "RETURNING workspace, account_id, access_epoch",
        _hash(value),
        workspace,
    )
    return Session(row["workspace"], row["account_id"], row["access_epoch"]) if row else None


async def end(pool: asyncpg.Pool, value: str | None) -> None:
    if value:
        await pool.execute("UPDATE portal_sessions SET ended_at = now() WHERE session_hash = $1", _hash(value))
