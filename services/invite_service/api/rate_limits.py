"""Rate limits on the public, unauthenticated surface (the portal).

A claim token carries a 192-bit MAC, so guessing one is hopeless; what a flood of bad
links costs is an event-store read each. `FailureLimiter` counts failures per client in a
moving window (the `limits` library) and, once a client is over, answers 429 with
Retry-After to everything that limiter guards until the window moves on.

A client is its address, `request.client`, which edge.py resolves once for the whole app:
`X-Forwarded-For` counts only from TRUSTED_PROXIES, else anyone could name a fresh address
per request and never be limited.

Counters live in this API process's memory: with several replicas the limit applies per
replica. Sign-in's abuse limits (one-time codes, magic links) will need shared counters.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from services.common.problems import Problem


class FailureLimiter:
    def __init__(self, name: str, failures_per_minute: int) -> None:
        self._name = name
        self._item = RateLimitItemPerMinute(failures_per_minute)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def check(self, client: str) -> Problem | None:
        """The 429 to answer when `client` already failed too often in the last minute, else None.
        Returned rather than raised: the portal renders it as a page or as JSON."""
        if await self._limiter.test(self._item, self._name, client):
            return None
        stats = await self._limiter.get_window_stats(self._item, self._name, client)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return Problem(
            429,
            "too_many_attempts",
            "Too many attempts",
            f"Too many invalid links from this address; try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )

    async def failed(self, client: str) -> None:
        await self._limiter.hit(self._item, self._name, client)
