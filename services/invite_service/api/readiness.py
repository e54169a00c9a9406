"""Whether the broker answers, asked at most every few seconds: readiness probes come
often, and a broker handshake is not free."""

from __future__ import annotations

import time

from services.common.kafka import broker_reachable

BROKER_CHECK_TTL = 5.0  # seconds


class BrokerProbe:
    def __init__(self, bootstrap_servers: str, ttl: float = BROKER_CHECK_TTL) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._ttl = ttl
        self._last: tuple[float, bool] | None = None

    async def reachable(self) -> bool:
        if self._last is None or time.monotonic() - self._last[0] > self._ttl:
            self._last = (time.monotonic(), await broker_reachable(self._bootstrap_servers))
        return self._last[1]
