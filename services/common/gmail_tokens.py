"""Staff members' Gmail OAuth tokens: sealed before they reach PostgreSQL, opened only to send.

The API stores them (PUT .../staff/{staff_id}/gmail), the notifier reads them (its GmailRouter).
Sealing is AES-GCM with a key derived by HKDF from PORCHLIGHT_SECRET_KEY for this purpose
only, and the row's workspace and staff id as associated data: a sealed token copied to another
row does not open. A database dump alone reveals no token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"  # the sealing scheme, so a later one can open what this one sealed
_NONCE_BYTES = 12


@dataclass(frozen=True)
class GmailToken:
    # repr=False: a token in a traceback or a debug log is a leaked token.
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None


class TokenSeal:
    def __init__(self, secret_key: bytes) -> None:
        # A key for this purpose only: the same secret also derives links and codes (HMAC).
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"porchlight", info=b"staff-gmail-tokens/v1")
        key = hkdf.derive(secret_key)
        self._aead = AESGCM(key)

    def seal(self, workspace: str, staff_id: str, token: GmailToken) -> bytes:
        plain = json.dumps({"access_token": token.access_token, "refresh_token": token.refresh_token}).encode()
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plain, _bound(workspace, staff_id))

    def open(self, workspace: str, staff_id: str, sealed: bytes, expires_at: datetime | None) -> GmailToken | None:
        """None when it does not open (another key, another row): as good as not connected."""
        if sealed[:1] != _VERSION:
            return None
        nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            plain = json.loads(self._aead.decrypt(nonce, ciphertext, _bound(workspace, staff_id)))
        except InvalidTag:
            return None
        return GmailToken(plain["access_token"], plain.get("refresh_token"), expires_at)


def _bound(workspace: str, staff_id: str) -> bytes:
    return json.dumps([workspace, staff_id]).encode()


class GmailTokens:
    """The table, through an asyncpg pool; tokens go in and come out sealed by `seal`."""

    def __init__(self, pool: asyncpg.Pool, seal: TokenSeal) -> None:
        self._pool = pool
        self._seal = seal

    async def put(self, workspace: str, staff_id: str, token: GmailToken, *, connected_by: str) -> None:
        await self._pool.execute(
            """INSERT INTO staff_gmail_tokens (workspace, staff_id, sealed, expires_at, connected_by)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (workspace, staff_id) DO UPDATE
               SET sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at,
                   connected_by = EXCLUDED.connected_by, updated_at = now()""",
            workspace, staff_id, self._seal.seal(workspace, staff_id, token), token.expires_at, connected_by,
        )

    async def delete(self, workspace: str, staff_id: str) -> bool:
        status = await self._pool.execute(
            "DELETE FROM staff_gmail_tokens WHERE workspace = $1 AND staff_id = $2", workspace, staff_id
        )
        return status != "DELETE 0"

    async def get(self, workspace: str, staff_id: str) -> GmailToken | None:
        row = await self._pool.fetchrow(
            "SELECT sealed, expires_at FROM staff_gmail_tokens WHERE workspace = $1 AND staff_id = $2",
            workspace, staff_id,
        )
        if row is None:
            return None
        return self._seal.open(workspace, staff_id, bytes(row["sealed"]), row["expires_at"])
