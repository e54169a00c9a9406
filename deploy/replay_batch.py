"""The live projector's handlers, run over a page of the log with a round trip per statement kind.

Replay calls the same typed handlers as the live projector (projections/status_list.py);
what differs is the connection they are handed. Live, each handler's statements run one
by one in its own transaction. Replay gives them a `StatementBatch` instead: it queues
each statement and runs the queue with `executemany`, one call per distinct statement, so
a page of thousands of events costs a handful of round trips instead of thousands.

Running queued statements grouped by kind reorders them, and that is safe only between
events of different Kafka keys (accounts): the handlers are written for Kafka, which
orders one key's events and interleaves keys arbitrarily, so any interleaving that keeps
each key's order is an input they must already handle. So a page is applied in waves:
wave n holds the n-th event of each key in the page, and a wave's queue is run before the
next wave's handlers are called. Within one handler call, statement order is kept.

The one answer a handler gets back that a queue cannot give is a statement's result:
`execute` returns "" (a handler that logs "UPDATE 0" stays quiet), and anything that reads
(`fetch*`) first runs the queue, then runs for real, so it sees every earlier write.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from projections.projector import Projector


class StatementBatch:
    """Quacks like the asyncpg connection the handlers use; queues writes, runs them grouped.

    `redone_later` names statements whose effect the caller redoes for every row at the end
    anyway (replay recomputes each account's last delivery at the swap): they are dropped."""

    def __init__(self, conn: asyncpg.Connection, redone_later: Callable[[str], bool] | None = None) -> None:
        self._conn = conn
        self._queue: list[tuple[int, str, tuple[Any, ...]]] = []
        self._in_call = 0  # the index of the next statement within the current handler call
        self._redone_later = redone_later

    def begin_call(self) -> None:
        self._in_call = 0

    async def execute(self, sql: str, *args: Any) -> str:
        if self._redone_later is not None and self._redone_later(sql):
            return ""
        self._queue.append((self._in_call, sql, args))
        self._in_call += 1
        return ""  # unknown until the queue runs

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self.flush()
        return await self._conn.fetchval(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        await self.flush()
        return await self._conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        await self.flush()
        return await self._conn.fetch(sql, *args)

    async def flush(self) -> None:
        """Run the queue: first statements of every call, then second ones, ..., each kind at once."""
        if not self._queue:
            return
        queue, self._queue = self._queue, []
        first_seen: dict[str, int] = {}
        for _, sql, _ in queue:
            first_seen.setdefault(sql, len(first_seen))
        queue.sort(key=lambda item: (item[0], first_seen[item[1]]))  # stable: order within a kind is kept
        start = 0
        while start < len(queue):
            index, sql, _ = queue[start]
            end = start
            while end < len(queue) and queue[end][0] == index and queue[end][1] == sql:
                end += 1
            await self._conn.executemany(sql, [args for _, _, args in queue[start:end]])
            start = end


class BatchProjector(Projector):
    """A Projector whose `applying` claims in bulk, in the page's transaction.

    Every (projection, aggregate, version) occurs once in the event store, and the tables
    being built are written by nobody else, so a claim made during a replay is always a
    first one: it is not asked, only collected, and the page's claims are written with one
    COPY, and each projection's highest position with one statement, once the page's
    handlers have run (record_applied's statement per event, with its upsert of the
    position row, was the costliest statement of a replay).
    """

    CLAIM_COLUMNS = ("projection", "aggregate_id", "version", "event_id", "position")

    def __init__(self) -> None:
        super().__init__(pool=None)
        self.batch: StatementBatch | None = None
        self.claims: list[tuple[str, uuid.UUID, int, uuid.UUID | None, int | None]] = []

    @asynccontextmanager
    async def applying(
        self, projection: str, key: uuid.UUID, version: int, event_id: uuid.UUID | None,
        *, position: int | None = None, fill_gap: Any = None,
    ) -> AsyncIterator[Any]:
        # No gap can occur here (the log is read whole, in order), so `fill_gap` is not needed.
        assert self.batch is not None, "apply_page sets the batch"
        self.batch.begin_call()
        # The claim also records the position, so the rebuilt projection_positions (and with it
        # read-your-writes and the lag) stand where the replay ended.
        self.claims.append((projection, key, version, event_id, position))
        yield self.batch
        self.stats.count(True)

    async def write_claims(self, conn: asyncpg.Connection) -> None:
        claims, self.claims = self.claims, []
        if not claims:
            return
        await conn.copy_records_to_table("projection_applied", records=claims, columns=self.CLAIM_COLUMNS)
        highest: dict[str, int] = {}
        for projection, _, _, _, position in claims:
            if position is not None and position > highest.get(projection, 0):
                highest[projection] = position
        # As record_applied moves it: never backwards.
        await conn.executemany(
            """
            INSERT INTO projection_positions (projection, position, updated_at) VALUES ($1, $2, now())
            ON CONFLICT (projection) DO UPDATE
                SET position = GREATEST(projection_positions.position, EXCLUDED.position), updated_at = now()
            """,
            list(highest.items()),
        )


def waves(envelopes: Sequence[Any]) -> list[list[Any]]:
    """The page split so that each wave holds at most one event per key, keys in page order."""
    seen: dict[Any, int] = {}
    out: list[list[Any]] = []
    for envelope in envelopes:
        key = envelope.account_id or envelope.aggregate_id  # what `envelope.key` encodes, without the encoding
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(envelope)
    return out


async def apply_page(
    conn: asyncpg.Connection,
    projector: BatchProjector,
    envelopes: Sequence[Any],
    handler_for: Callable[[str], Callable[..., Awaitable[Any]]],
    redone_later: Callable[[str], bool] | None = None,
) -> None:
    """Apply `envelopes` (in log order) with their handlers, in one transaction on `conn`."""
    async with conn.transaction():
        projector.batch = batch = StatementBatch(conn, redone_later)
        projector.claims = []
        try:
            for wave in waves(envelopes):
                for envelope in wave:
                    await handler_for(envelope.type)(envelope, projector)
                await batch.flush()
            await projector.write_claims(conn)
        finally:
            projector.batch = None
