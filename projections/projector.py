"""What every projector handler is given: the pool, and one transaction per message that
first records the message as applied.

    async with projector.applying(PROJECTION, msg.aggregate_id, msg.aggregate_version, msg.event_id) as conn:
        if conn is None:
            return False  # applied before: change nothing
        await conn.execute(...)  # the read-model update, in the same transaction

The update and the applied-record commit together, so a crash between them cannot leave
one without the other, and a redelivered message changes nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from faststream import Context

from projections.applied import record_applied
from services.common.metrics import PROJECTED

log = logging.getLogger("projections.consumer")

# Failures worth a retry (by redelivery): the database, not the message.
_TRANSIENT = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass
class ProjectorStats:
    """Counts for the periodic summary line (see main.py)."""

    applied: int = 0
    duplicates: int = 0
    failures: int = 0

    def count(self, applied: bool) -> None:
        if applied:
            self.applied += 1
        else:
            self.duplicates += 1


class Projector:
    def __init__(self, pool: asyncpg.Pool | None, stats: ProjectorStats | None = None) -> None:
        self.pool = pool  # None only where nothing is consumed (building the AsyncAPI document)
        self.stats = stats if stats is not None else ProjectorStats()

    @asynccontextmanager
    async def applying(
        self, projection: str, key: uuid.UUID, version: int, event_id: uuid.UUID | None
    ) -> AsyncIterator[asyncpg.Connection | None]:
        """A transaction that has claimed (projection, key, version): its connection, or None
        if that was applied before."""
        assert self.pool is not None, "run() builds the projector with its pool"
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                applied = await record_applied(conn, projection, key, version, event_id)
                yield conn if applied else None
        except _TRANSIENT as exc:
            self.stats.failures += 1
            log.warning("projecting %s %s v%d failed, will retry: %s", projection, key, version, exc)
            raise
        self.stats.count(applied)
        PROJECTED.labels("applied" if applied else "duplicate").inc()
        log.debug("%s %s %s v%d", "applied" if applied else "already applied", projection, key, version)


# How a handler asks for it: `projector: ProjectorContext` (set on each broker by create_projector).
ProjectorContext = Annotated[Projector, Context("projector")]
