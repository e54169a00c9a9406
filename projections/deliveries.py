"""Delivery outcomes (`account_deliveries`) and each account's latest delivery status.

One typed handler, `on_delivery`, on the deliveries topic. Idempotent on (delivery_id,
attempt): a retried send keeps its delivery id and reports a higher attempt, which is a new
row; a re-published outcome is the same row and changes nothing. What the provider reports
later about an attempt it accepted ('delivered', 'bounced': the Postmark webhooks) updates
that attempt's row, so the list answers "did it arrive?"; it is recorded as applied under
its own key, so it is not taken for a repeat of the send's outcome.
"""

from __future__ import annotations

import uuid

from contracts.deliveries import DeliveryOutcomeV1
from projections.projector import ProjectorContext
from projections.status_list import lock_account

PROJECTION = "deliveries"
RECEIPTS = frozenset({"delivered", "bounced"})  # reports on an attempt already recorded
_RECEIPT_NAMESPACE = uuid.UUID("5d0c6f0e-2f7a-4a51-9a43-1f3b3e0c7d21")


async def on_delivery(outcome: DeliveryOutcomeV1, projector: ProjectorContext) -> bool:
    """A delivery outcome: kept per attempt, and shown on its account if it is the newest."""
    receipt = outcome.status in RECEIPTS
    key = uuid.uuid5(_RECEIPT_NAMESPACE, f"{outcome.delivery_id}/{outcome.status}") if receipt else outcome.delivery_id
    async with projector.applying(PROJECTION, key, outcome.attempt, outcome.event_id) as conn:
        if conn is None:
            return False  # recorded before: change nothing
        # A receipt replaces the send's status of its attempt ('bounced' also a 'delivered');
        # the send's outcome arriving after its receipt changes nothing.
        await conn.execute(
            """
            INSERT INTO account_deliveries (delivery_id, attempt, account_id, workspace, event_id,
                                            channel, provider, status, error, at, held, audience)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            ON CONFLICT (delivery_id, attempt) DO UPDATE
               SET status = excluded.status, error = excluded.error, at = excluded.at, held = excluded.held
             WHERE excluded.status IN ('delivered', 'bounced')
               AND (account_deliveries.status NOT IN ('delivered', 'bounced')
                    OR (account_deliveries.status = 'delivered' AND excluded.status = 'bounced'))
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
            outcome.held,
            outcome.audience,
        )
        if outcome.audience == "team":
            return True  # about the account, not to it: listed, but not its delivery status
        # Topics are not ordered against each other: only a newer outcome replaces the
        # shown status, and a row created later catches up (status_list._catch_up_deliveries).
        # The account's lock orders this against that catch-up: without it, a row created in a
        # concurrent transaction is seen by neither side and the delivery never shows.
        await lock_account(conn, outcome.account_id)
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
