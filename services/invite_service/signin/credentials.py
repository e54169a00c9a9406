"""The credentials table: one argon2id hash per account.

Written as a side row in the transaction of the PasswordSet event (event_store.py), so a
password is set exactly when the event says so; read with the event store's own
connection pool, from the command that checks a sign-in.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.invite_service.event_store import SideRow


def store(account_id: UUID, password_hash: str) -> SideRow:
    return SideRow(
        "INSERT INTO portal_credentials (account_id, password_hash) VALUES (%s, %s) "
        "ON CONFLICT (account_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()",
        (account_id, password_hash),
    )


def password_hash(datastore: Any, account_id: UUID) -> str | None:
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute("SELECT password_hash FROM portal_credentials WHERE account_id = %s", (account_id,))
        row = curs.fetchone()
    return row["password_hash"] if row else None
