"""The delivery ledger: what was sent for which (event, channel), in `notifier_deliveries`.

`claim()` opens a transaction, makes sure the row exists and locks it. While the lock is
held no other consumer (say, the new owner of a partition after a rebalance) can send
the same delivery; once the row says 'sent', every later delivery of the event skips.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from contracts import DeliveryOutcomeV1

DELIVERY_NAMESPACE = uuid.UUID("0b7e6a52-58f4-4c1f-9f0b-3c7d2b1e9a44")
FINAL = frozenset({"sent", "suppressed"})  # nothing left to do for these


def delivery_id_for(event_id: uuid.UUID, channel: str) -> uuid.UUID:
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}/{channel}")


@dataclass
class Entry:
    """One locked ledger row; `record` updates it inside the claiming transaction."""

    conn: asyncpg.Connection
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    channel: str
    account_id: uuid.UUID
    workspace: str
    provider: str
    status: str
    attempt: int
    error: str | None
    updated_at: datetime

    @property
    def done(self) -> bool:
        return self.status in FINAL

    async def record(self, status: str, *, error: str | None = None, message_id: str | None = None) -> None:
        row = await self.conn.fetchrow(
            """
            UPDATE notifier_deliveries
               SET status = $3, error = $4, message_id = COALESCE($5, message_id), attempt = attempt + 1,
                   sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END, updated_at = now()
             WHERE event_id = $1 AND channel = $2
         RETURNING status, attempt, error, updated_at
            """,
            self.event_id, self.channel, status, error, message_id,
        )
        self.status, self.attempt, self.error, self.updated_at = row

    def outcome(self) -> DeliveryOutcomeV1:
        return DeliveryOutcomeV1(
            delivery_id=self.delivery_id,
            event_id=self.event_id,
            account_id=self.account_id,
            workspace=self.workspace,
            channel=self.channel,
            provider=self.provider,
            status=self.status,
            attempt=max(self.attempt, 1),
            error=self.error,
            at=self.updated_at,
        )


@asynccontextmanager
async def claim(
    pool: asyncpg.Pool, *, event_id: uuid.UUID, channel: str, account_id: uuid.UUID, workspace: str, provider: str
) -> AsyncIterator[Entry]:
    """Lock the ledger row of this delivery for the length of the block; commits on exit."""
    async with pool.acquire() as conn, conn.transaction():
        # ON CONFLICT DO NOTHING waits for a concurrent inserter, then the SELECT sees its row.
        await conn.execute(
            """
            INSERT INTO notifier_deliveries (event_id, channel, delivery_id, account_id, workspace, provider, status)
            VALUES ($1, $2, $3, $4, $5, $6, 'pending')
            ON CONFLICT (event_id, channel) DO NOTHING
            """,
            event_id, channel, delivery_id_for(event_id, channel), account_id, workspace, provider,
        )
        row = await conn.fetchrow(
            "SELECT delivery_id, event_id, channel, account_id, workspace, provider, status, attempt, error, updated_at"
            " FROM notifier_deliveries WHERE event_id = $1 AND channel = $2 FOR UPDATE",
            event_id, channel,
        )
        yield Entry(conn, **dict(row))
