"""Background processes say they are alive, so the API's /readyz can tell, and so can their own.

Each beat writes the process's row in PostgreSQL (the API's /readyz lists who is alive) and
notes in `HEALTH`, in memory, that the event loop turned, whether PostgreSQL took the beat
and what the process's other dependency checks answered. The process's probe endpoint
(metrics.py, on METRICS_PORT) answers /readyz from `HEALTH` in its own thread, so a stuck
event loop shows as stale rather than as a probe that hangs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping

import asyncpg

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 2.0
STALE_AFTER_SECONDS = 10.0


class LocalHealth:
    """What the last beat found, for this process's /readyz (read from another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checked_at: float | None = None  # monotonic time of the last beat: the loop turned then
        self._checks: dict[str, bool] = {}

    def record(self, checks: Mapping[str, bool]) -> None:
        with self._lock:
            self._checked_at, self._checks = time.monotonic(), dict(checks)

    def clear(self) -> None:
        with self._lock:
            self._checked_at, self._checks = None, {}

    def readiness(self, stale_after: float = STALE_AFTER_SECONDS) -> tuple[bool, dict[str, object]]:
        """(ready?, the report): ready when the loop beat recently and every check passed."""
        with self._lock:
            checked_at, checks = self._checked_at, dict(self._checks)
        age = None if checked_at is None else time.monotonic() - checked_at
        loop_ok = age is not None and age <= stale_after
        report: dict[str, object] = {
            "loop": "ok" if loop_ok else ("starting" if age is None else f"no beat for {age:.0f} s"),
            **{name: "ok" if ok else "unreachable" for name, ok in checks.items()},
        }
        return loop_ok and all(checks.values()), report


HEALTH = LocalHealth()


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat(pool: asyncpg.Pool, process: str, instance: str) -> None:
    await pool.execute(
        "INSERT INTO process_heartbeats (process, instance, beat_at) VALUES ($1, $2, now()) "
        "ON CONFLICT (process, instance) DO UPDATE SET beat_at = now()",
        process,
        instance,
    )


async def run_heartbeat(
    pool: asyncpg.Pool, process: str, checks: Mapping[str, Callable[[], Awaitable[bool]]] | None = None
) -> None:
    """Beat until cancelled; a failed beat is logged and retried, never fatal. Each beat also
    runs `checks` (name -> probe, e.g. the broker) and notes the results in HEALTH."""
    instance = instance_name()
    try:
        while True:
            database_ok = True
            try:
                await beat(pool, process, instance)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # InterfaceError: a pooled connection PostgreSQL closed under us (a restart).
                log.warning("heartbeat failed: %s: %s", type(exc).__name__, exc)
                database_ok = False
            results = {"database": database_ok}
            for name, probe in (checks or {}).items():
                results[name] = await probe()
            HEALTH.record(results)
            await asyncio.sleep(INTERVAL_SECONDS)
    finally:
        HEALTH.clear()
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
