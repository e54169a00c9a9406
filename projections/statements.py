"""A batch's writes sent a statement kind at a time: a handful of round trips per batch.

The projector's handlers write through whatever connection `Projector.applying` yields.
Inside `Projector.batch` that is a `StatementQueue`: `execute` queues the statement and
returns at once, and `flush` sends the queue with `executemany`, one call per statement
kind, so a fetched batch of hundreds of events costs a few round trips, not three apiece.

Sending statements grouped by kind reorders them, which is safe only between events of
different Kafka keys (accounts): the handlers are written for Kafka, which orders one key's
events and interleaves keys arbitrarily. So a batch is applied in waves (`waves`): wave n
holds the n-th event of each key, and the queue is flushed before the next wave. Within
one handler call the statements keep their order. `execute` answers "" (a handler that
warns on "UPDATE 0" stays quiet), and anything that reads first flushes the queue, so it
sees every earlier write. (deploy/replay_batch.py does the same for replay.)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")


class StatementQueue:
    """Quacks like the asyncpg connection the handlers use; queues writes, sends them grouped."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._queue: list[tuple[int, str, tuple[Any, ...]]] = []
        self._in_call = 0  # the index of the next statement within the current handler call

    def begin_call(self) -> None:
        self._in_call = 0

    async def execute(self, sql: str, *args: Any) -> str:
        self._queue.append((self._in_call, sql, args))
        self._in_call += 1
        return ""  # unknown until the queue is sent

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self.flush()
        return await self.conn.fetchval(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        await self.flush()
        return await self.conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        await self.flush()
        return await self.conn.fetch(sql, *args)

    async def flush(self) -> None:
        """Send the queue: first statements of every call, then second ones, ..., each kind at once."""
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
            if end - start == 1:
                await self.conn.execute(sql, *queue[start][2])
            else:
                await self.conn.executemany(sql, [args for _, _, args in queue[start:end]])
            start = end


def waves(items: Sequence[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """`items` split so that each wave holds at most one item per key, each key's items in order."""
    seen: dict[Hashable, int] = {}
    out: list[list[T]] = []
    for item in items:
        n = seen.get(key(item), 0)
        seen[key(item)] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(item)
    return out
