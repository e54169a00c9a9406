"""Portal sessions: opaque cookie values, stored only as their SHA-256, ended server side."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

COOKIE_NAME = "porchlight_session"
ABSOLUTE_LIFETIME = timedelta(days=30)


@dataclass(frozen=True)
class Session:
    workspace: str
    account_id: UUID
    access_epoch: int


def _hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


async def start(pool: asyncpg.Pool, workspace: str, account_id: UUID, access_epoch: int, method: str) -> str:
    """Create a session; returns the cookie value, which is stored nowhere."""
    value = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO portal_sessions (session_hash, workspace, account_id, access_epoch, method, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        _hash(value),
        workspace,
        account_id,
        access_epoch,
        method,
        datetime.now(UTC) + ABSOLUTE_LIFETIME,
    )
    return value


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
