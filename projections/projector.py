"""What every projector handler is given: the pool, and one transaction per message that
first records the message as applied.

    async with projector.applying(PROJECTION, msg.aggregate_id, msg.aggregate_version, msg.event_id) as conn:
        if conn is None:
            return False  # applied before: change nothing
        await conn.execute(...)  # the read-model update, in the same transaction

The update and the applied-record commit together, so a crash between them cannot leave
one without the other, and a redelivered message changes nothing. Inside
`projector.batch(...)` (batches.py) the same handlers share one transaction instead, their
claims made for the whole batch in one statement and their writes queued (statements.py).
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any

import asyncpg

from contracts.access import AccessEventV1
from projections.applied import GapFound, record_applied
from projections.positions import record_position
from projections.statements import StatementQueue
from services.common.context import LoopContext
from services.common.metrics import PROJECTOR_GAPS, PROJECTED

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


# Given an access event and the versions of its aggregate that never arrived, those events
# read back from the event store (as the relay would have published them). The read side
# cannot build them itself (it never imports the write side), so the composition root gives it.
EventSource = Callable[[AccessEventV1, list[int]], Awaitable[list[AccessEventV1]]]


class Projector:
    def __init__(
        self,
        pool: asyncpg.Pool | None,
        stats: ProjectorStats | None = None,
        event_source: EventSource | None = None,
    ) -> None:
        self.pool = pool  # None only where nothing is consumed (building the AsyncAPI document)
        self.stats = stats if stats is not None else ProjectorStats()
        self.event_source = event_source  # None: gaps are not looked for (tests of single handlers)
        # Set inside `batch()`: handlers then apply on this connection, in its one transaction.
        self._batch: ContextVar[_Batch | None] = ContextVar("projector_batch", default=None)

    @asynccontextmanager
    async def applying(
        self,
        projection: str,
        key: uuid.UUID,
        version: int,
        event_id: uuid.UUID | None,
        *,
        position: int | None = None,
        fill_gap: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[asyncpg.Connection | None]:
        """A transaction that has claimed (projection, key, version): its connection, or None
        if that was applied before.

        With `fill_gap`, a version whose predecessor was never applied is not applied yet:
        the claim rolls back, `fill_gap` applies the missing events, and the claim is made again.
        Inside `batch()` the batch's connection and transaction are used instead of new ones.
        """
        assert self.pool is not None, "run() builds the projector with its pool"
        check = fill_gap is not None and version > 1
        batch = self._batch.get()
        if batch is not None:
            # A gap or any failure aborts the whole batch, which is then applied one by one.
            batch.queue.begin_call()
            claim = (key, version)
            if batch.claimed is not None and claim in batch.offered:
                applied = claim in batch.claimed
                batch.claimed.discard(claim)  # the same event twice in one batch: the second is a repeat
            else:  # not claimed up front (a caller the batch did not foresee): claim it now
                await batch.queue.flush()
                applied = await record_applied(
                    batch.conn, projection, key, version, event_id, position, check_previous=check,
                    track_position=False,
                )
            yield batch.queue if applied else None
            batch.results.append((applied, projection, key, version))  # counted once it commits
            return
        try:
            while True:
                try:
                    async with self.pool.acquire() as conn, conn.transaction():
                        applied = await record_applied(
                            conn, projection, key, version, event_id, position, check_previous=check
                        )
                        yield conn if applied else None
                    break
                except GapFound as gap:
                    assert fill_gap is not None
                    log.warning("%s; repairing from the event store", gap)
                    PROJECTOR_GAPS.inc()
                    await fill_gap()
                    check = False  # filled (fill_gap raises if it could not): apply now
        except _TRANSIENT as exc:
            self.stats.failures += 1
            log.warning("projecting %s %s v%d failed, will retry: %s", projection, key, version, exc)
            raise
        self._counted(applied, projection, key, version)

    def _counted(self, applied: bool, projection: str, key: uuid.UUID, version: int) -> None:
        self.stats.count(applied)
        PROJECTED.labels("applied" if applied else "duplicate").inc()
        log.debug("%s %s %s v%d", "applied" if applied else "already applied", projection, key, version)

    def current_batch(self) -> _Batch | None:
        """The batch being applied (inside `batch()`), else None."""
        return self._batch.get()

    @asynccontextmanager
    async def batch(
        self, projection: str, positions: list[int], claims: Sequence[Claim] = (), *, check_gaps: bool = False,
        accounts: Sequence[bytes] = (),
    ) -> AsyncIterator[StatementQueue]:
        """One transaction for many messages: every `applying` inside uses it, and the
        projection's highest position is raised once, at the end, before the commit.

        `claims` (the batch's (key, version, event_id, position), in order) are claimed up
        front in one statement (with `check_gaps`, one whose version n-1 was never applied
        raises GapFound); `applying` then only looks its claim up. Handlers write through the
        yielded queue; the caller flushes it between waves (statements.py), and the rest is
        flushed here before the commit.

        `accounts` (Kafka keys) are locked first, for the transaction: the access and delivery
        batches both touch an account's row, each reading what the other wrote (a delivery
        whose account row is not there yet is caught up by the row's creation). Run at the same
        moment, neither would see the other's uncommitted work and the delivery status would be
        lost; under the lock the second sees the first's commit.
        """
        assert self.pool is not None, "run() builds the projector with its pool"
        async with self.pool.acquire() as conn, conn.transaction():
            if accounts:
                await _lock_accounts(conn, accounts)
            batch = _Batch(conn, StatementQueue(conn))
            if claims:
                batch.offered = {(c[0], c[1]) for c in claims}
                batch.claimed = await _claim_all(conn, projection, claims, check_gaps)
            token = self._batch.set(batch)
            try:
                yield batch.queue
                await batch.queue.flush()
                for hook in batch.before_commit:  # handlers' writes gathered over the batch (status_list's rows)
                    await hook()
            finally:
                self._batch.reset(token)
            if positions:
                await record_position(conn, projection, max(positions))
        for result in batch.results:
            self._counted(*result)


ACCOUNT_LOCKS = 0x506C  # the advisory-lock class of account rows (the other int is a hash of the key)


async def _lock_accounts(conn: asyncpg.Connection, accounts: Sequence[bytes]) -> None:
    # In ascending order, so two batches sharing accounts cannot each hold one the other waits for.
    keys = sorted({zlib.crc32(account) - 2**31 for account in accounts})
    await conn.execute("SELECT pg_advisory_xact_lock($1::int, k) FROM unnest($2::int[]) AS k", ACCOUNT_LOCKS, keys)


# What a batch claims for one message: (key, version, event_id, position).
Claim = tuple[uuid.UUID, int, uuid.UUID | None, int | None]


async def _claim_all(
    conn: asyncpg.Connection, projection: str, claims: Sequence[Claim], check_gaps: bool
) -> set[tuple[uuid.UUID, int]]:
    """record_applied (applied.py) for a whole batch in one round trip: the (key, version)s
    claimed now. A predecessor counts as applied if it was before or is in this batch."""
    rows = await conn.fetch(
        """
        WITH offered AS (
            SELECT * FROM unnest($2::uuid[], $3::int[], $4::uuid[], $5::bigint[])
                AS o(aggregate_id, version, event_id, position)
        ), claimed AS (
            INSERT INTO projection_applied (projection, aggregate_id, version, event_id, position)
            SELECT $1, aggregate_id, version, event_id, position FROM offered
            ON CONFLICT DO NOTHING RETURNING aggregate_id, version
        )
        SELECT c.aggregate_id, c.version,
               (NOT $6 OR c.version = 1
                OR EXISTS (SELECT 1 FROM offered o WHERE o.aggregate_id = c.aggregate_id AND o.version = c.version - 1)
                OR EXISTS (SELECT 1 FROM projection_applied p WHERE p.projection = $1
                           AND p.aggregate_id = c.aggregate_id AND p.version = c.version - 1)) AS has_previous
        FROM claimed c
        """,
        projection,
        [c[0] for c in claims],
        [c[1] for c in claims],
        [c[2] for c in claims],
        [c[3] for c in claims],
        check_gaps,
    )
    for row in rows:
        if not row["has_previous"]:
            raise GapFound(projection, row["aggregate_id"], row["version"])
    return {(row["aggregate_id"], row["version"]) for row in rows}


@dataclass
class _Batch:
    conn: asyncpg.Connection
    queue: StatementQueue
    offered: set[tuple[uuid.UUID, int]] = field(default_factory=set)
    claimed: set[tuple[uuid.UUID, int]] | None = None  # None: nothing claimed up front
    results: list[tuple[bool, str, uuid.UUID, int]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # a handler module's own, for this batch
    before_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


# How a handler asks for it: `projector: ProjectorContext` (set on each broker by create_projector).
ProjectorContext = Annotated[Projector, LoopContext("projector")]
