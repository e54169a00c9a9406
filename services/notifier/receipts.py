"""What a provider reports after it accepted a message: delivered, or bounced.

Recorded by whoever receives the report (the API process, for Postmark's webhooks) straight
into the ledger, in one transaction with the suppression list, and marked unpublished: the
notifier's retry loop publishes it to the deliveries topic (the outbox), so the API needs no
Kafka producer and a report is never lost between the database and the topic. The outcome
keeps the delivery id and attempt of the send it reports on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

from services.notifier import suppression


@dataclass(frozen=True)
class Receipt:
    status: Literal["delivered", "bounced"]
    delivery_id: uuid.UUID | None  # from the message's metadata
    provider_message_id: str | None
    address: str | None
    reason: str | None
    suppress: bool  # a hard bounce or an inactive recipient: hold the address


async def record(pool: asyncpg.Pool, receipt: Receipt) -> uuid.UUID | None:
    """The delivery the receipt is about, updated (None when it is not ours, e.g. sent by
    another system on the same Postmark server). A late 'delivered' never overwrites 'bounced'.
    A report may beat the sender's own record of the send ('sending'): the report wins, and
    the sender, finding its row no longer 'sending', leaves it alone (ledger.record)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """
            UPDATE notifier_deliveries
               SET status = $3, error = $4, held = CASE WHEN $5 THEN 'postmark: ' || $4 END, published = false,
                   updated_at = now()
             WHERE delivery_id = (SELECT delivery_id FROM notifier_deliveries
                                   WHERE delivery_id = $1 OR ($1 IS NULL AND message_id = $2) LIMIT 1)
               AND status IN ('sending', 'sent', 'delivered', 'bounced')
               AND NOT (status = 'bounced' AND $3 = 'delivered')
         RETURNING delivery_id, workspace, recipient
            """,
            receipt.delivery_id, receipt.provider_message_id, receipt.status, receipt.reason, receipt.suppress,
        )
        if row is None:
            return None
        if receipt.suppress:
            await suppression.suppress(conn, [(
                row["workspace"], receipt.address or row["recipient"], f"postmark: {receipt.reason}", row["delivery_id"]
            )])
        return row["delivery_id"]
