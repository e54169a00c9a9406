"""The log follower: pages after the stored position, the position stored only once a page
was handled, retries from the same place through an outage, woken by LISTEN."""

from __future__ import annotations

import asyncio

import pytest

from services.common.database import create_pool, eventsourcing_env
from services.common.log_follower import LogFollower, load_position, save_position
from services.invite_service.application import PortalAccess
from tests.conftest import SECRET_KEY
from tests.helpers import poll_until, unique
from tests.integration.databases import own_database  # noqa: F401 - fixture

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}


class Flaky(Exception):
    """Stands for an outage of whatever the handler writes to."""


@pytest.fixture
async def log(own_database):  # noqa: F811 - the fixture, by name
    app = PortalAccess(eventsourcing_env(own_database), secret_key=SECRET_KEY.encode())
    pool = await create_pool(own_database, max_size=4)
    yield app, pool
    await pool.close()
    app.close()


async def write_events(app: PortalAccess, count: int) -> int:
    """`count` more notifications in the log; returns the head position."""
    target = (app.recorder.max_notification_id() or 0) + count
    while (app.recorder.max_notification_id() or 0) < target:
        await app.configure_workspace(unique("ws"), {"plan": "pro"}, STAFF)
    return app.recorder.max_notification_id()


class Pages:
    """A page handler that records the ids of every page it was handed."""

    def __init__(self) -> None:
        self.pages: list[list[int]] = []

    async def __call__(self, page) -> None:
        self.pages.append([n.id for n in page])

    @property
    def ids(self) -> list[int]:
        return [i for page in self.pages for i in page]


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_pages_in_order_from_the_start_and_the_position_stored(log):
    app, pool = log
    head = await write_events(app, 7)
    handled = Pages()
    follower = LogFollower(app.recorder, pool, unique("f"), page_size=3)
    assert await follower.catch_up(handled) == head
    assert handled.ids == list(range(1, head + 1))
    assert [len(p) for p in handled.pages][:2] == [3, 3] and all(len(p) <= 3 for p in handled.pages)
    assert await load_position(pool, follower.name) == head


async def test_resumes_after_the_stored_position(log):
    app, pool = log
    head = await write_events(app, 6)
    name = unique("f")
    await save_position(pool, name, 4)
    handled = Pages()
    await LogFollower(app.recorder, pool, name, page_size=100).catch_up(handled)
    assert handled.ids == list(range(5, head + 1))


async def test_position_is_stored_only_after_the_handler_returned(log):
    app, pool = log
    head = await write_events(app, 3)
    name = unique("f")
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(page) -> None:
        entered.set()
        await release.wait()

    task = asyncio.create_task(LogFollower(app.recorder, pool, name, page_size=100).follow(slow))
    try:
        await asyncio.wait_for(entered.wait(), timeout=20)
        assert await load_position(pool, name) == 0, "stored while the page was still being handled"
        release.set()

        async def stored():
            return await load_position(pool, name) == head

        await poll_until(stored, what="the position stored once the handler returned")
    finally:
        await stop(task)


async def test_a_handler_outage_is_retried_from_the_same_position(log):
    app, pool = log
    head = await write_events(app, 5)
    name = unique("f")
    handled = Pages()
    outages: list[BaseException] = []

    async def flaky_once(page) -> None:
        await handled(page)
        if len(handled.pages) == 1:
            assert await load_position(pool, name) == 0
            raise Flaky("the backend is away")

    async def on_outage(exc: BaseException) -> None:
        outages.append(exc)

    follower = LogFollower(
        app.recorder, pool, name, page_size=100, outages=(Flaky,), retry_first_seconds=0.01, on_outage=on_outage
    )
    task = asyncio.create_task(follower.follow(flaky_once))
    try:
        async def stored():
            return await load_position(pool, name) == head

        await poll_until(stored, what="the page handled on the second attempt")
    finally:
        await stop(task)
    assert handled.pages[0] == handled.pages[1] == list(range(1, head + 1))
    assert follower.failures == 1 and [type(e) for e in outages] == [Flaky]


async def test_an_unexpected_handler_error_ends_follow_and_stores_nothing(log):
    app, pool = log
    await write_events(app, 2)
    name = unique("f")

    async def broken(page) -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await asyncio.wait_for(LogFollower(app.recorder, pool, name, outages=(Flaky,)).follow(broken), timeout=20)
    assert await load_position(pool, name) == 0


async def test_a_new_event_wakes_the_follower_without_the_safety_poll(log):
    app, pool = log
    head = await write_events(app, 1)
    name = unique("f")
    handled = Pages()
    # No safety re-read within the test: only the NOTIFY of the next insert can wake it in time.
    follower = LogFollower(app.recorder, pool, name, safety_poll_seconds=600)
    task = asyncio.create_task(follower.follow(handled))
    try:
        await poll_until(lambda: _at(pool, name, head), what="the existing event handled")
        later = await write_events(app, 1)
        await poll_until(lambda: _at(pool, name, later), what="the new event handled after a NOTIFY")
    finally:
        await stop(task)
    assert handled.ids == list(range(1, later + 1))


async def test_a_rewind_from_the_handler_reads_again_from_there(log):
    app, pool = log
    head = await write_events(app, 6)
    name = unique("f")
    handled = Pages()
    follower = LogFollower(app.recorder, pool, name, page_size=4)

    async def rewind_once(page) -> None:
        await handled(page)
        if len(handled.pages) == 2:
            await follower.rewind(2)

    task = asyncio.create_task(follower.follow(rewind_once))
    try:
        await poll_until(lambda: _at(pool, name, head), what="the log handled after the rewind")
    finally:
        await stop(task)
    first = list(range(1, 5)) + list(range(5, min(9, head + 1)))
    assert handled.ids[: len(first)] == first
    assert handled.ids[len(first):] == list(range(3, head + 1))  # again after 2; the rewound page not stored


async def test_a_rewind_while_idle_reads_again_from_there(log):
    app, pool = log
    head = await write_events(app, 3)
    name = unique("f")
    handled = Pages()
    follower = LogFollower(app.recorder, pool, name, safety_poll_seconds=600)
    task = asyncio.create_task(follower.follow(handled))
    try:
        await poll_until(lambda: _at(pool, name, head), what="the log handled")
        await follower.rewind(1)  # from outside, while the follower waits for a NOTIFY
        assert await load_position(pool, name) == 1, "a rewind is stored at once"

        async def read_again():
            return len(handled.ids) == head + head - 1

        await poll_until(read_again, what="the log read again after position 1")
    finally:
        await stop(task)
    assert handled.ids == list(range(1, head + 1)) + list(range(2, head + 1))
    assert await load_position(pool, name) == head


async def _at(pool, name: str, position: int) -> bool:
    return await load_position(pool, name) >= position


class Gate:
    """Stands in for a gathering follower's wait: held until the test opens it."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.open = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.open.wait()


async def test_a_gathering_follower_hands_what_committed_during_its_wait_in_one_page(log):
    app, pool = log
    head = await write_events(app, 1)
    name = unique("f")
    handled = Pages()
    follower = LogFollower(app.recorder, pool, name, safety_poll_seconds=600, gather_seconds=60)
    follower._gather = gate = Gate()
    task = asyncio.create_task(follower.follow(handled))
    try:
        # The gate is closed: the first read did not wait, the next one does.
        await poll_until(lambda: _at(pool, name, head), what="the existing event handled")
        await poll_until(lambda: _async(gate.waits), what="the next read waiting")
        later = await write_events(app, 3)  # three commits, three NOTIFYs, while the follower waits
        gate.open.set()
        await poll_until(lambda: _at(pool, name, later), what="the new events handled")
    finally:
        await stop(task)
    assert handled.pages[-1] == list(range(head + 1, later + 1))
    assert 0 < gate.waits[0] <= 60


async def test_a_gathering_follower_does_not_wait_while_it_is_behind(log):
    app, pool = log
    head = await write_events(app, 5)
    name = unique("f")
    handled = Pages()
    follower = LogFollower(app.recorder, pool, name, page_size=2, safety_poll_seconds=600, gather_seconds=60)
    follower._gather = gate = Gate()  # never opened: a wait would stop it short of the head
    task = asyncio.create_task(follower.follow(handled))
    try:
        await poll_until(lambda: _at(pool, name, head), what="the log handled page after full page")
    finally:
        await stop(task)
    assert handled.ids == list(range(1, head + 1))
    assert all(len(page) == 2 for page in handled.pages[:-1])


async def _async(value):
    return value


async def test_a_catch_up_that_does_not_store_its_position(log):
    """Replay's build reads the whole log every time: it keeps its position without a commit per page."""
    app, pool = log
    head = await write_events(app, 7)
    name = unique("f")
    await save_position(pool, name, 2)
    handled = Pages()
    follower = LogFollower(app.recorder, pool, name, page_size=3)
    assert await follower.catch_up(handled, store=False) == head == follower.position
    assert handled.ids == list(range(3, head + 1))
    assert await load_position(pool, name) == 2
