"""Group commit: many concurrent commands, one event-store transaction.

The event store serialises inserts with a table lock, so one transaction per request
caps the write rate near the lock's round trip. Here concurrent commands hand their
events to whoever is already flushing; it saves everything pending in one transaction.
If that batch breaks a uniqueness rule (two invites of one email), each command's events
are saved on their own, so only the offender fails.

Two front ends share that rule (`save_batch`): `GroupCommitter` for commands running in
threads, and `AsyncGroupCommitter` for coroutines, which wait on the event loop and cost
one thread hop per batch instead of one per request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, Recording

from services.common.metrics import COMMIT_BATCH

SaveEvents = Callable[[Sequence[Any]], list[Recording]]
Outcome = int | BaseException  # the highest notification id a command's events got, or why they did not


def save_batch(save_events: SaveEvents, commands: list[list[Any]]) -> list[Outcome]:
    """Save every command's events in one transaction; one outcome per command, in order."""
    try:
        recordings = save_events([e for events in commands for e in events])
    except IntegrityError:
        if len(commands) == 1:
            return [IntegrityError()]
        return [save_batch(save_events, [events])[0] for events in commands]  # find the offender
    except BaseException as exc:  # noqa: BLE001 - every waiter must hear of the failure
        return [exc] * len(commands)
    COMMIT_BATCH.observe(len(commands))
    positions = {(r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id for r in recordings}
    return [max(positions[(e.originator_id, e.originator_version)] for e in events) for events in commands]


@dataclass
class _Pending:
    events: list[Any]
    done: Future = field(default_factory=Future)


class GroupCommitter:
    """For commands running in threads: the first waiter flushes for everyone queued."""

    def __init__(self, save_events: SaveEvents, max_batch: int = 200) -> None:
        self._save_events = save_events
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._flushing = False

    def commit(self, events: list[Any]) -> int:
        """Store the events atomically; returns the highest notification id they got."""
        item = _Pending(events)
        with self._lock:
            self._queue.append(item)
            lead = not self._flushing
            if lead:
                self._flushing = True
        if lead:
            self._flush_until_empty()
        return item.done.result()

    def _flush_until_empty(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                if not batch:
                    self._flushing = False
                    return
            for item, outcome in zip(batch, save_batch(self._save_events, [i.events for i in batch]), strict=True):
                if isinstance(outcome, BaseException):
                    item.done.set_exception(outcome)
                else:
                    item.done.set_result(outcome)


class AsyncGroupCommitter:
    """For coroutines: requests queue on the event loop; one task saves batch after batch,
    each in a worker thread (the library's driver is synchronous)."""

    def __init__(self, save_events: SaveEvents, max_batch: int = 200) -> None:
        self._save_events = save_events
        self._max_batch = max_batch
        self._queue: list[tuple[list[Any], asyncio.Future[int]]] = []
        self._saving = 0  # commands in the batch being saved now
        self._flusher: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Commands handed in and not yet answered: waiting for a batch, or in the one being saved."""
        return len(self._queue) + self._saving

    async def commit(self, events: list[Any]) -> int:
        """Store the events atomically; returns the highest notification id they got."""
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((events, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_until_empty())
        # A caller that goes away (client disconnect) cancels only its wait: its events are
        # already queued, and they commit with the batch they are in.
        return await done

    async def _flush_until_empty(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                self._saving = len(batch)
                try:
                    outcomes = await asyncio.to_thread(save_batch, self._save_events, [events for events, _ in batch])
                except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
                    for _, done in batch + self._queue:
                        if not done.done():
                            done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("shutting down"))
                    self._queue = []
                    raise
                finally:
                    self._saving = 0
                for (_, done), outcome in zip(batch, outcomes, strict=True):
                    if done.done():  # its caller stopped waiting
                        continue
                    if isinstance(outcome, BaseException):
                        done.set_exception(outcome)
                    else:
                        done.set_result(outcome)
        finally:
            self._flusher = None
