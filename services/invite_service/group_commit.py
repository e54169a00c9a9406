"""Group commit: many concurrent commands, one event-store transaction.

The event store serialises inserts, so one transaction per request caps the write rate
near that round trip. Here concurrent commands hand their events (and the rows that must
commit with them, like a claim's session) to one flusher task, which saves everything
pending in one transaction. If that batch breaks a uniqueness rule (two invites of one
email), each command's events and rows are saved on their own, so only the offender fails.

Commands wait on the event loop; the batch pays the one thread hop to the library's
synchronous driver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, Recording

from services.common.metrics import COMMIT_BATCH
from services.invite_service.event_store import SideRow

SaveEvents = Callable[[Sequence[Any], Sequence[SideRow]], list[Recording]]
Outcome = int | BaseException  # the highest notification id a command's events got, or why they did not


@dataclass(frozen=True)
class Write:
    """What one command stores: its events, and rows that commit with them or not at all."""

    events: list[Any]
    side_rows: Sequence[SideRow] = ()


def save_batch(save_events: SaveEvents, writes: list[Write]) -> list[Outcome]:
    """Save every command's write in one transaction; one outcome per command, in order."""
    try:
        recordings = save_events([e for w in writes for e in w.events], [r for w in writes for r in w.side_rows])
    except IntegrityError:
        if len(writes) == 1:
            return [IntegrityError()]
        return [save_batch(save_events, [write])[0] for write in writes]  # find the offender
    except BaseException as exc:  # noqa: BLE001 - every waiter must hear of the failure
        return [exc] * len(writes)
    COMMIT_BATCH.observe(len(writes))
    # The recordings come in the order of the events handed in: each write's are the next len(events).
    ids = [r.notification.id for r in recordings]
    outcomes: list[Outcome] = []
    start = 0
    for write in writes:
        end = start + len(write.events)
        outcomes.append(max(ids[start:end]))
        start = end
    return outcomes


@dataclass
class _Pending:
    write: Write
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitter:
    """Requests queue on the event loop; one task saves batch after batch, each in a worker thread."""

    def __init__(self, save_events: SaveEvents, max_batch: int = 200) -> None:
        self._save_events = save_events
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._saving = 0  # commands in the batch being saved now
        self._flusher: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Commands handed in and not yet answered: waiting for a batch, or in the one being saved."""
        return len(self._queue) + self._saving

    async def commit(self, events: list[Any], side_rows: Sequence[SideRow] = ()) -> int:
        """Store the events and side rows atomically; returns the highest notification id the events got."""
        item = _Pending(Write(events, side_rows))
        self._queue.append(item)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_until_empty())
        # A caller that goes away (client disconnect) cancels only its wait: its events are
        # already queued, and they commit with the batch they are in.
        return await item.done

    async def _flush_until_empty(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                self._saving = len(batch)
                try:
                    outcomes = await asyncio.to_thread(save_batch, self._save_events, [i.write for i in batch])
                except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
                    for item in batch + self._queue:
                        if not item.done.done():
                            item.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("shutting down"))
                    self._queue = []
                    raise
                finally:
                    self._saving = 0
                for item, outcome in zip(batch, outcomes, strict=True):
                    if item.done.done():  # its caller stopped waiting
                        continue
                    if isinstance(outcome, BaseException):
                        item.done.set_exception(outcome)
                    else:
                        item.done.set_result(outcome)
        finally:
            self._flusher = None
