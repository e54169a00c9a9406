"""Cheap answers to "is this dependency up?", for deciding whether a failure counts.

A consumer whose handler failed because a dependency looked unreachable asks the probe:
if the dependency answers, the failure was the message's own and counts toward giving up;
if not, it is an outage and the message waits for it (services/common/dead_letters.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

TIMEOUT_SECONDS = 2.0


def database_probe(pool: asyncpg.Pool, timeout: float = TIMEOUT_SECONDS) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        try:
            async with asyncio.timeout(timeout):
                return await pool.fetchval("SELECT 1") == 1
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # TimeoutError is an OSError
            return False

    return probe


def tcp_probe(host: str, port: int, timeout: float = TIMEOUT_SECONDS) -> Callable[[], Awaitable[bool]]:
    """Does anything accept a connection there? Enough to tell a relay that is down from a
    message it refuses; the probe closes without a word, which relays log and shrug off."""

    async def probe() -> bool:
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        return True

    return probe


def broker_probe(bootstrap_servers: str, timeout: float = TIMEOUT_SECONDS) -> Callable[[], Awaitable[bool]]:
    """Does any of the bootstrap brokers accept a connection? A TCP connect only: cheap enough
    to run at every heartbeat without adding to the broker's load (an admin client would)."""
    probes = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        probes.append(tcp_probe(host.strip("[]") or "localhost", int(port or 9092), timeout))

    async def probe() -> bool:
        for each in probes:
            if await each():
                return True
        return False

    return probe
