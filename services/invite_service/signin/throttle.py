"""Rate limits shared by every API replica, in PostgreSQL.

One row per (limit, key): the window starts at the key's first hit and lasts `window`;
each hit adds one in a single atomic upsert, so concurrent replicas count together and
none can race past the limit. Over the limit the caller answers 429 `too_many_attempts`
with Retry-After = what is left of the window. Keys (an email, a client address) are
stored as SHA-256 of the limit name and key: the table keeps no address in clear.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from services.common.problems import Problem


@dataclass(frozen=True)
class Limit:
    bucket: str  # e.g. "sign-in:email"
    hits: int
    window: timedelta


class Throttle:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def hit(self, limit: Limit, key: str) -> Problem | None:
        """Count one hit; the 429 to answer when this one is over the limit, else None."""
        digest = hashlib.sha256(f"{limit.bucket}|{key}".encode()).digest()
        row = await self._pool.fetchrow(
            """
            INSERT INTO portal_rate_limits AS r (bucket, key, window_start, hits) VALUES ($1, $2, now(), 1)
            ON CONFLICT (bucket, key) DO UPDATE SET
                window_start = CASE WHEN r.window_start <= now() - $3::interval THEN now() ELSE r.window_start END,
                hits = CASE WHEN r.window_start <= now() - $3::interval THEN 1 ELSE r.hits + 1 END
            RETURNING hits, extract(epoch FROM r.window_start + $3::interval - now()) AS left_seconds
            """,
            limit.bucket,
            digest,
            limit.window,
        )
        if random.random() < 0.01:  # windows long over are of no use to anyone: sweep now and then
            await self._pool.execute(
                "DELETE FROM portal_rate_limits WHERE window_start < now() - interval '1 day'"
            )
        if row["hits"] <= limit.hits:
            return None
        retry_after = max(1, math.ceil(float(row["left_seconds"])))
        return Problem(
            429,
            "too_many_attempts",
            "Too many attempts",
            f"Too many attempts; try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )
