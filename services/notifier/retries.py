"""The retry schedule: transient failures are sent again from PostgreSQL, not by sleeping.

A delivery that failed transiently is recorded 'retrying' with `next_attempt_at` (exponential
backoff with jitter: `backoff`); the handler that sent it has returned and its partition has
moved on, so no other account's message waits behind it. `run_retries`, a task of the
notifier process, polls for due rows (ledger.claim_due: SKIP LOCKED, so notifiers polling
together take different rows, with a lease each), sends them again and records the outcome.
The same poll takes back deliveries whose lease ran out (a notifier died mid-send), sends the
team notices queued for failed deliveries, and publishes outcomes recorded but not yet on the
deliveries topic (the outbox: webhooks, or a crash between recording and publishing).
"""

from __future__ import annotations

import asyncio
import logging
import random

log = logging.getLogger("porchlight.notifier")


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before attempt `attempt + 1`: doubling from `base`, at most `cap`, jittered so
    messages that failed together in one provider outage do not all come back at once."""
    return min(cap, base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def run_retries(notifier, poll_seconds: float) -> None:
    """Until cancelled: send what is due, publish what is unpublished, else wait a poll."""
    while True:
        try:
            busy = await notifier.retry_due()
            busy += await notifier.publish_unpublished()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - PostgreSQL or the broker away: try again next poll
            log.warning("retry loop: %s: %s; trying again in %.1fs", type(exc).__name__, exc, poll_seconds)
            busy = 0
        if not busy:
            await asyncio.sleep(poll_seconds)
