"""The suppression list (`notifier_suppressions`): addresses not to email again.

Postmark reports an address inactive or hard-bounced (a 406 on send, or a bounce webhook);
from then on the ledger records a message to it as 'suppressed' with the reason instead of
sending it (the claim joins this table: ledger.claim). Staff clear it by resending: an
InviteSent of a resend or reactivation clears its address before it is claimed.
"""

from __future__ import annotations

import uuid

import asyncpg

# InviteSent.method of an invite staff explicitly sent again (lifecycle.py's resend and reactivate).
EXPLICIT_RESENDS = frozenset({"resend", "reactivate"})


async def suppress(
    conn: asyncpg.Connection, entries: list[tuple[str, str, str, uuid.UUID | None]]
) -> None:
    """(workspace, address, reason, delivery id) each: hold the address from now on."""
    if entries:
        await conn.execute(
            """
            INSERT INTO notifier_suppressions (workspace, address, reason, delivery_id)
            SELECT workspace, lower(address), reason, delivery_id
              FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[]) AS e(workspace, address, reason, delivery_id)
            ON CONFLICT (workspace, address) DO UPDATE SET reason = excluded.reason,
                   delivery_id = excluded.delivery_id, at = now()
            """,
            [e[0] for e in entries], [e[1] for e in entries], [e[2][:500] for e in entries], [e[3] for e in entries],
        )


async def clear(conn: asyncpg.Connection, addresses: list[tuple[str, str]]) -> None:
    """(workspace, address) each: a staff resend, so mail may go there again."""
    if addresses:
        await conn.execute(
            """
            DELETE FROM notifier_suppressions s
             USING unnest($1::text[], $2::text[]) AS c(workspace, address)
             WHERE s.workspace = c.workspace AND s.address = lower(c.address)
            """,
            [a[0] for a in addresses], [a[1] for a in addresses],
        )
