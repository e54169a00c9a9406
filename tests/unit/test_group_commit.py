"""Group commit: concurrent commands share a transaction; one offender fails alone, and the
rows a command stores with its events (a claim's session) go with them, or not at all."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

from eventsourcing.persistence import IntegrityError

from services.invite_service.event_store import SideRow
from services.invite_service.group_commit import GroupCommitter
from tests.helpers import poll_until


class FakeStore:
    """Stands in for the event store's insert only; the real one is tested in integration.
    Like a transaction, a save stores all of its events and side rows or none of them."""

    def __init__(self) -> None:
        self.keys: set = set()
        self.rows: set = set()
        self.transactions: list[int] = []
        self.next_id = 0
        self.gate = threading.Event()

    def save(self, events, side_rows):
        self.gate.wait(5)
        keys = [(e.originator_id, e.originator_version) for e in events]
        rows = [r.params for r in side_rows]
        if len(set(keys)) != len(keys) or self.keys & set(keys) or len(set(rows)) != len(rows) or self.rows & set(rows):
            raise IntegrityError()
        self.keys |= set(keys)
        self.rows |= set(rows)
        self.transactions.append(len(events))
        out = []
        for e in events:
            self.next_id += 1
            out.append(SimpleNamespace(domain_event=e, notification=SimpleNamespace(id=self.next_id)))
        return out


def ev(agg: str, version: int = 1):
    return SimpleNamespace(originator_id=agg, originator_version=version)


def row(key: str) -> SideRow:
    return SideRow("INSERT INTO sessions VALUES (%s)", (key,))


async def all_queued(committer: GroupCommitter, count: int) -> None:
    async def queued() -> bool:
        return committer.queued >= count

    await poll_until(queued, timeout=5, what=f"{count} commits handed in")


async def test_concurrent_commands_share_transactions_and_get_their_own_positions():
    store = FakeStore()
    committer = GroupCommitter(store.save, max_batch=100)
    commits = [asyncio.create_task(committer.commit([ev(f"a{i}"), ev(f"b{i}")])) for i in range(64)]
    await all_queued(committer, 64)  # every coroutine has handed in its events before the store opens
    store.gate.set()
    positions = await asyncio.gather(*commits)
    assert len(set(positions)) == 64
    assert sum(store.transactions) == 128 and len(store.transactions) < 64


async def test_one_duplicate_fails_alone_and_the_rest_commit():
    store = FakeStore()
    store.gate.set()
    committer = GroupCommitter(store.save)
    await committer.commit([ev("taken")])
    store.gate.clear()
    commits = [asyncio.create_task(committer.commit([ev(name)])) for name in ("x1", "taken", "x2", "x3")]
    await all_queued(committer, 4)
    store.gate.set()
    outcomes = await asyncio.gather(*commits, return_exceptions=True)
    assert isinstance(outcomes[1], IntegrityError)
    assert all(isinstance(o, int) for i, o in enumerate(outcomes) if i != 1)
    assert {("x1", 1), ("x2", 1), ("x3", 1)} <= store.keys


async def test_side_rows_commit_with_their_own_command_when_a_batch_is_split():
    store = FakeStore()
    store.gate.set()
    committer = GroupCommitter(store.save)
    await committer.commit([ev("taken")])
    store.gate.clear()
    commits = [
        asyncio.create_task(committer.commit([ev("claim-1")], [row("session-1")])),
        asyncio.create_task(committer.commit([ev("taken")], [row("session-lost")])),  # loses the race
        asyncio.create_task(committer.commit([ev("claim-2")], [row("session-2")])),
    ]
    await all_queued(committer, 3)
    store.gate.set()
    outcomes = await asyncio.gather(*commits, return_exceptions=True)
    assert isinstance(outcomes[1], IntegrityError)
    assert store.rows == {("session-1",), ("session-2",)}  # the loser's session was never stored
    assert {("claim-1", 1), ("claim-2", 1)} <= store.keys


async def test_a_side_row_that_cannot_be_stored_fails_its_command_and_its_events():
    store = FakeStore()
    store.gate.set()
    committer = GroupCommitter(store.save)
    await committer.commit([ev("first")], [row("same")])
    store.gate.clear()
    clashing = asyncio.create_task(committer.commit([ev("second")], [row("same")]))
    fine = asyncio.create_task(committer.commit([ev("third")]))
    await all_queued(committer, 2)
    store.gate.set()
    outcomes = await asyncio.gather(clashing, fine, return_exceptions=True)
    assert isinstance(outcomes[0], IntegrityError) and isinstance(outcomes[1], int)
    assert ("second", 1) not in store.keys and ("third", 1) in store.keys


async def test_failures_reach_every_waiter():
    def broken(events, side_rows):
        raise ConnectionError("database went away")

    committer = GroupCommitter(broken)
    outcomes = await asyncio.gather(*(committer.commit([ev(f"a{i}")]) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)


async def test_a_caller_that_stops_waiting_still_commits_and_others_are_answered():
    store = FakeStore()
    committer = GroupCommitter(store.save)
    leaving = asyncio.create_task(committer.commit([ev("leaves")]))
    staying = asyncio.create_task(committer.commit([ev("stays")]))
    await all_queued(committer, 2)
    leaving.cancel()
    store.gate.set()
    assert isinstance(await staying, int)
    assert {("leaves", 1), ("stays", 1)} <= store.keys
