"""How far the projections have got in the event store's notification log.

Read-your-writes: a command answers the position of the last event it stored, and all of a
command's events concern one account, so they travel on one partition, in order. So once
the event AT that position is applied, everything the command wrote is. A read that passes
`min_position` waits for exactly that (`projection_applied.position`), polling briefly; the
highest position applied would not do, since another partition may be ahead of this one.

Lag: `projection_positions` keeps the highest position each projection applied (updated
in the transaction that applies the event); the event store's head minus that is the lag
(an estimate while partitions are uneven, and zero when all is applied).
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from services.common.metrics import PROJECTION_LAG

log = logging.getLogger(__name__)

STATUS_LIST = "status_list"
EVENT_STORE_TABLE = "porchlight_events"  # the eventsourcing library's table for the `porchlight` app


async def has_applied(pool: asyncpg.Pool | asyncpg.Connection, projection: str, position: int) -> bool:
    return bool(await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM projection_applied WHERE projection = $1 AND position = $2)",
        projection,
        position,
    ))


async def wait_until_applied(
    pool: asyncpg.Pool, projection: str, position: int, *, timeout: float = 2.0, interval: float = 0.05
) -> bool:
    """True once `projection` has applied the event at `position`; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if await has_applied(pool, projection, position):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def record_position(conn: asyncpg.Connection, projection: str, position: int) -> None:
    """Raise the projection's highest applied position, in the caller's transaction."""
    await conn.execute(
        "INSERT INTO projection_positions (projection, position, updated_at) VALUES ($1, $2, now()) "
        "ON CONFLICT (projection) DO UPDATE SET position = GREATEST(projection_positions.position, EXCLUDED.position), "
        "updated_at = now()",
        projection,
        position,
    )


async def lag(pool: asyncpg.Pool, projection: str = STATUS_LIST) -> tuple[int, int]:
    """(the event store's head, how many positions `projection` is behind it)."""
    row = await pool.fetchrow(
        f"SELECT (SELECT COALESCE(max(notification_id), 0) FROM {EVENT_STORE_TABLE}) AS head, "
        "(SELECT position FROM projection_positions WHERE projection = $1) AS applied",
        projection,
    )
    head, applied = row["head"], row["applied"] or 0
    return head, max(0, head - applied)


LAG_INTERVAL_SECONDS = 5.0


async def report_lag(pool: asyncpg.Pool, projection: str = STATUS_LIST) -> None:
    """Keep the lag gauge current (the projector process runs this until it stops)."""
    while True:
        try:
            _, behind = await lag(pool, projection)
            PROJECTION_LAG.labels(projection).set(behind)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("projection lag unknown for now: %s", exc)  # the heartbeat and probes report outages
        await asyncio.sleep(LAG_INTERVAL_SECONDS)
