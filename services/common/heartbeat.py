"""Background processes say they are alive, so the API's /readyz can tell."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import asyncpg

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 2.0
STALE_AFTER_SECONDS = 10.0


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat(pool: asyncpg.Pool, process: str, instance: str) -> None:
    await pool.execute(
        "INSERT INTO process_heartbeats (process, instance, beat_at) VALUES ($1, $2, now()) "
        "ON CONFLICT (process, instance) DO UPDATE SET beat_at = now()",
        process,
        instance,
    )


async def run_heartbeat(pool: asyncpg.Pool, process: str) -> None:
    """Beat until cancelled; a failed beat is logged and retried, never fatal."""
    instance = instance_name()
    try:
        while True:
            try:
                await beat(pool, process, instance)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # InterfaceError: a pooled connection PostgreSQL closed under us (a restart).
                log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(INTERVAL_SECONDS)
    finally:
        try:
            await pool.execute("DELETE FROM process_heartbeats WHERE process=$1 AND instance=$2", process, instance)
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass


async def live_processes(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch(
        "SELECT DISTINCT process FROM process_heartbeats WHERE beat_at > now() - make_interval(secs => $1)",
        STALE_AFTER_SECONDS,
    )
    return {r["process"] for r in rows}
