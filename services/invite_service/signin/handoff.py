"""One-time codes that hand a signed-in client to the host app's portal.

After a sign-in the client is sent to the workspace's `portal_url` with `?code=...`; the
host app exchanges the code, server side and with its staff token, for the session
(`POST /v1/workspaces/{ws}/sessions/exchange`). A code lives 60 seconds and works once;
only its SHA-256 is stored, in the transaction that starts the session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit
from uuid import UUID

import asyncpg

from services.invite_service.event_store import SideRow

LIFETIME = timedelta(seconds=60)


def _hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def new(workspace: str, session_id: UUID) -> tuple[str, SideRow]:
    code = secrets.token_urlsafe(24)
    row = SideRow(
        "INSERT INTO portal_handoffs (code_hash, workspace, session_id, expires_at) VALUES (%s, %s, %s, %s)",
        (_hash(code), workspace, session_id, datetime.now(UTC) + LIFETIME),
    )
    return code, row


async def redeem(pool: asyncpg.Pool, workspace: str, code: str) -> UUID | None:
    """The session a code hands over, once; None for a used, expired or unknown code."""
    if not code or len(code) > 100:
        return None
    return await pool.fetchval(
        "UPDATE portal_handoffs SET used_at = now() "
        "WHERE code_hash = $1 AND workspace = $2 AND used_at IS NULL AND expires_at > now() RETURNING session_id",
        _hash(code),
        workspace,
    )


def usable_portal_url(portal_url: str | None, allow_http: bool) -> str | None:
    """The workspace's portal, if it may be sent to: https, or http only under `porchlight dev`.
    Only ever the stored setting, never a URL from the request."""
    if not portal_url:
        return None
    scheme = urlsplit(portal_url).scheme
    return portal_url if scheme == "https" or (allow_http and scheme == "http") else None


def redirect_url(portal_url: str, code: str) -> str:
    parts = urlsplit(portal_url)
    query = f"{parts.query}&{urlencode({'code': code})}" if parts.query else urlencode({"code": code})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
