"""Group commit: many request threads, one event-store transaction.

The event store serialises inserts with a table lock, so one transaction per request
caps the write rate near the lock's round trip. Here concurrent commands hand their
events to whichever thread is already flushing; it saves everything pending in one
transaction. If that batch breaks a uniqueness rule (two invites of one email), each
command's events are saved on their own, so only the offender fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError, Recording

from services.common.metrics import COMMIT_BATCH

SaveEvents = Callable[[Sequence[Any]], list[Recording]]


@dataclass
class _Pending:
    events: list[Any]
    done: Future = field(default_factory=Future)


class GroupCommitter:
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
            self._flush(batch)

    def _flush(self, batch: list[_Pending]) -> None:
        try:
            recordings = self._save_events([e for item in batch for e in item.events])
            COMMIT_BATCH.observe(len(batch))
        except IntegrityError:
            if len(batch) == 1:
                batch[0].done.set_exception(IntegrityError())
                return
            for item in batch:  # find the offender; the rest still commit
                self._flush([item])
            return
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear of the failure
            for item in batch:
                item.done.set_exception(exc)
            return
        positions = {(r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id for r in recordings}
        for item in batch:
            item.done.set_result(max(positions[(e.originator_id, e.originator_version)] for e in item.events))
