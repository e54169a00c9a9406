"""Delivery outcomes (`account_deliveries`) and each account's latest delivery status.

One typed handler, `on_delivery`, on the deliveries topic. Idempotent on (delivery_id,
attempt): a retried send keeps its delivery id and reports a higher attempt, which is a new
row; a re-published outcome is the same row and changes nothing.
"""

from __future__ import annotations

from contracts.deliveries import DeliveryOutcomeV1
from projections.projector import ProjectorContext

PROJECTION = "deliveries"


async def on_delivery(outcome: DeliveryOutcomeV1, projector: ProjectorContext) -> bool:
    """A delivery outcome: kept per attempt, and shown on its account if it is the newest."""
    async with projector.applying(PROJECTION, outcome.delivery_id, outcome.attempt, outcome.event_id) as conn:
        if conn is None:
            return False  # recorded before: change nothing
        await conn.execute(
            """
            INSERT INTO account_deliveries (delivery_id, attempt, account_id, workspace, event_id,
                                            channel, provider, status, error, at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT DO NOTHING
            """,
            outcome.delivery_id,
            outcome.attempt,
            outcome.account_id,
            outcome.workspace,
            outcome.event_id,
            outcome.channel,
            outcome.provider,
            outcome.status,
            outcome.error,
            outcome.at,
        )
        # Topics are not ordered against each other: only a newer outcome replaces the
        # shown status, and a row created later catches up (status_list._catch_up_deliveries).
        await conn.execute(
            """
            UPDATE account_status SET last_delivery_status = $3, last_delivery_at = $4
            WHERE account_id = $1 AND workspace = $2
              AND (last_delivery_at IS NULL OR last_delivery_at <= $4)
            """,
            outcome.account_id,
            outcome.workspace,
            outcome.status,
            outcome.at,
        )
    return True
