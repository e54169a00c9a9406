"""Follows the event store's notification log: the one loop every reader of the log shares.

The relay (log → Kafka), replay and the audit chain all need the same thing: the events
after a stored position, a page at a time, woken as soon as new ones commit, and the
position stored only once the page was dealt with. So a crash repeats a page, never
skips one (at-least-once), and whoever handles pages must tolerate a repeat.

    follower = LogFollower(app.recorder, pool, "relay")
    await follower.follow(handle_page)          # until cancelled: LISTEN, pages, stored position
    await follower.catch_up(handle_page)        # up to the head of the log, then return

The follower LISTENs on the channel the eventsourcing library NOTIFYs in every insert
transaction and reads with the library's `select_notifications`; a reader that only hands
the stored bytes on (replay, to its worker processes) asks for raw pages instead
(`catch_up(handle, raw=True)`): the same rows as plain tuples, read over asyncpg, without
the library's Notification objects and uuid parsing (under half the time the library's read takes). The library's table
lock makes ids commit in order, so reading "after my position" never passes over an event
that commits later. (The library's own `subscribe()` wraps the same LISTEN and select in
two threads and yields one notification at a time; pages keep a reader one coroutine.)

Positions live in the `relay_positions` table (named before it was shared), one row per
follower name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

import asyncpg
from eventsourcing.persistence import Notification, PersistenceError

from services.common.database import quote_ident

log = logging.getLogger(__name__)

PageHandler = Callable[[Sequence[Notification]], Awaitable[None]]
# A raw page's rows: (notification id, originator id as text, originator version, topic, state).
RawRow = tuple[int, str, int, str, bytes]
Db = asyncpg.Pool | asyncpg.Connection  # either runs a statement; a connection may be inside a transaction

# PostgreSQL going away is an outage for every follower; callers add their own (the relay adds the broker's).
DATABASE_OUTAGES: tuple[type[BaseException], ...] = (
    OSError, PersistenceError, asyncpg.PostgresError, asyncpg.InterfaceError,
)


async def load_position(db: Db, name: str) -> int:
    return await db.fetchval("SELECT position FROM relay_positions WHERE relay = $1", name) or 0


async def save_position(db: Db, name: str, position: int) -> None:
    """Store how far `name` got; never backwards (a slow, stale writer cannot undo progress)."""
    await db.execute(
        "INSERT INTO relay_positions (relay, position) VALUES ($1, $2) "
        "ON CONFLICT (relay) DO UPDATE SET position = GREATEST(relay_positions.position, EXCLUDED.position), "
        "updated_at = now()",
        name,
        position,
    )


async def set_position(db: Db, name: str, position: int) -> None:
    """Store a position even if it is behind the stored one: a rewind, to read again from there."""
    await db.execute(
        "INSERT INTO relay_positions (relay, position) VALUES ($1, $2) "
        "ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
        name,
        position,
    )


class LogFollower:
    """Hands each page of the log after the stored position to a handler, then stores the position.

    `recorder` is the Application's (it has `channel_name` and `select_notifications`); `pool`
    is asyncpg's, for LISTEN and the stored position. While an exception of `outages` is
    raised (by PostgreSQL, or by the handler for its own backend) `follow` backs off and
    retries from the stored position instead of giving up; `on_outage` hears of each one
    (to drop a broken connection, count a metric). Any other exception ends `follow`.
    """

    def __init__(
        self,
        recorder: Any,
        pool: asyncpg.Pool,
        name: str,
        *,
        page_size: int = 500,
        outages: tuple[type[BaseException], ...] = DATABASE_OUTAGES,
        safety_poll_seconds: float = 10.0,
        retry_first_seconds: float = 0.5,
        retry_max_seconds: float = 5.0,
        on_outage: Callable[[BaseException], Awaitable[None]] | None = None,
        gather_seconds: float = 0.0,
    ) -> None:
        self.name = name
        self.page_size = page_size
        self.outages = outages
        # Re-read this often even without a NOTIFY: a guard against a lost NOTIFY, not the way events are found.
        self.safety_poll_seconds = safety_poll_seconds
        self.retry_first_seconds = retry_first_seconds
        self.retry_max_seconds = retry_max_seconds
        # A follower off the request's path (the audit chain) reads at most once per this long,
        # so at a moderate rate a page holds what committed meanwhile, not one event: its
        # per-page transaction and round trips are paid per page, and they share the process
        # (and PostgreSQL) with the relay, which is on the invite-to-email path.
        self.gather_seconds = gather_seconds
        self._last_read = float("-inf")
        self._backlog = False  # the last page was full: more is waiting
        self.failures = 0  # outages backed off from, in total
        self._recorder = recorder
        self._pool = pool
        self._on_outage = on_outage
        self._position: int | None = None
        self._rewound_to: int | None = None
        self._woken = asyncio.Event()
        self._raw_select: str | None = None

    @property
    def position(self) -> int:
        """The last position handled and stored (or loaded at start)."""
        return self._position or 0

    async def rewind(self, position: int, db: Db | None = None) -> None:
        """Read again from after `position`. Stored at once (through `db`, which may be the caller's
        transaction); safe from inside a handler, whose page then does not move the position."""
        await set_position(db if db is not None else self._pool, self.name, position)
        self._rewound_to = position
        self._woken.set()

    async def read_page(self) -> Sequence[Notification]:
        if self.gather_seconds > 0 and not self._backlog:  # behind: read on at once
            loop = asyncio.get_running_loop()
            wait = self._last_read + self.gather_seconds - loop.time()
            if wait > 0:
                await self._gather(wait)
            self._last_read = loop.time()
        page = await asyncio.to_thread(self._recorder.select_notifications, self.position + 1, self.page_size)
        self._backlog = len(page) >= self.page_size
        return page

    async def _gather(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def read_raw_page(self) -> list[RawRow]:
        """The same page as `read_page`, as `RawRow` tuples: the library's table, read over asyncpg."""
        if self._raw_select is None:
            table = f'{quote_ident(self._recorder.datastore.schema)}.{quote_ident(self._recorder.events_table_name)}'
            self._raw_select = (
                f"SELECT notification_id, originator_id::text, originator_version, topic, state FROM {table} "
                "WHERE notification_id >= $1 ORDER BY notification_id LIMIT $2"
            )
        return [tuple(row) for row in await self._pool.fetch(self._raw_select, self.position + 1, self.page_size)]

    async def catch_up(self, handle: PageHandler, *, raw: bool = False, store: bool = True) -> int:
        """Handle every page up to the head of the log, then return the position. No retries:
        a one-off reader (replay, an audit run) should fail loudly and be run again. `raw`:
        the pages are `RawRow` tuples (`read_raw_page`), not the library's Notifications.
        `store=False`: the position is only kept here, not stored after each page (a commit
        each, waiting for its WAL flush), for a reader that never resumes from it (replay's
        build starts from the beginning every time)."""
        if self._position is None:
            self._position = await load_position(self._pool, self.name)
        while True:
            self._take_rewind()
            page = await (self.read_raw_page() if raw else self.read_page())
            if not page:
                return self.position
            await self._handle(page, handle, page[-1][0] if raw else page[-1].id, store=store)

    async def follow(self, handle: PageHandler, *, on_idle: Callable[[], Awaitable[None]] | None = None) -> NoReturn:
        """Handle pages until cancelled. `on_idle` runs each time the follower has caught up,
        before it waits for a NOTIFY; its outages are backed off from like any other."""
        listener = _Listener(self._pool, self._recorder.channel_name, self._woken)
        failures = 0
        try:
            while True:
                self._woken.clear()  # cleared before each read, so a NOTIFY that lands during it is not lost
                try:
                    if self._position is None:
                        self._position = await load_position(self._pool, self.name)
                    await listener.ensure(self.name)
                    self._take_rewind()
                    page = await self.read_page()
                    if page:
                        await self._handle(page, handle, page[-1].id)
                        failures = 0
                        continue
                    if on_idle is not None:
                        await on_idle()
                    failures = 0
                except self.outages as exc:
                    # Nothing after the stored position counts as handled: the next attempt starts there again.
                    failures += 1
                    self.failures += 1
                    delay = min(self.retry_first_seconds * 2 ** (failures - 1), self.retry_max_seconds)
                    log.warning(
                        "%s: cannot go on after position %d (attempt %d, retrying in %.1f s): %s: %s",
                        self.name, self.position, failures, delay, type(exc).__name__, exc,
                    )
                    if self._on_outage is not None:
                        await self._on_outage(exc)
                    await asyncio.sleep(delay)
                    continue
                if self._rewound_to is not None:
                    continue  # a rewind from outside (or from on_idle): read from there at once
                try:
                    await asyncio.wait_for(self._woken.wait(), timeout=self.safety_poll_seconds)
                except TimeoutError:
                    pass
        finally:
            await listener.close()

    async def _handle(self, page: Sequence[Any], handle: PageHandler, last: int, *, store: bool = True) -> None:
        if self._take_rewind():
            return  # rewound while we read: this page starts at the wrong place
        await handle(page)
        if self._take_rewind():
            return  # the handler (or someone) rewound: the page's end is not where we are
        if store:
            await save_position(self._pool, self.name, last)
        self._position = last

    def _take_rewind(self) -> bool:
        if self._rewound_to is None:
            return False
        self._position, self._rewound_to = self._rewound_to, None
        return True


class _Listener:
    """The LISTEN connection; listens again on a fresh one when it dies (PostgreSQL restarted,
    or the connection was killed), and wakes the follower to re-read in case a NOTIFY was missed."""

    def __init__(self, pool: asyncpg.Pool, channel: str, woken: asyncio.Event) -> None:
        self._pool = pool
        self._channel = channel
        self._woken = woken
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()

    def _on_notify(self, *_) -> None:
        self._woken.set()

    def _on_terminated(self, _conn) -> None:
        # asyncpg hands a dead connection back to the pool itself; only note it.
        self._lost.set()
        self._woken.set()

    async def ensure(self, name: str) -> None:
        if self._conn is not None and not self._lost.is_set():
            return
        if self._conn is not None:
            log.warning("%s: lost its LISTEN connection; listening again", name)
            self._conn = None
        conn = await self._pool.acquire()
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            await self._pool.release(conn)
            raise
        self._lost.clear()
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None and not self._lost.is_set():
            try:
                await self._conn.remove_listener(self._channel, self._on_notify)
            finally:
                await self._pool.release(self._conn)
        self._conn = None
