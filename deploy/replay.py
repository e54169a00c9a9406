"""`porchlight replay`: rebuild every read model from the event store, then swap it in at once.

Rule 3 of the architecture: read models are disposable. Replay reads the notification log
through the shared log follower (not Kafka), makes each stored event into the envelope the
relay would publish (services/invite_service/envelopes.py) and hands it to the live
projector's own typed handlers (projections/status_list.py), so the rows are built by the
same code, a page at a time (deploy/replay_batch.py).

    build  : schema `porchlight_replay`, the projections' DDL (projections/schema.sql) run
             in it; the whole log applied there. The API and the live projector meanwhile
             use the live tables, untouched.
    swap   : one transaction. Lock the live tables (the projector and the API wait, briefly),
             apply the tail of the log that arrived during the build, move the live tables
             out and the rebuilt ones in (`ALTER TABLE ... SET SCHEMA`), drop the old ones.
             Anything the projector applied to the old tables came from the log, so the
             tail covers it; nothing is applied to them once the lock is held.
    after  : the projector's applied-records were rebuilt with the rows, so what Kafka
             delivers again (or for the first time, but already replayed) is recognised as
             applied and changes nothing; new events apply to the new tables.

Delivery outcomes (`account_deliveries`) are not in the event store: they come from the
notifier on Kafka, and the topic may no longer hold them. So that table is kept as it is
across the swap, with its applied-records (projection `deliveries`) carried over, and
each rebuilt account's last delivery is filled in from it, as the handlers do live.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from eventsourcing.persistence import Notification

from deploy.replay_batch import BatchProjector, apply_page
from projections import deliveries, status_list
from services.common.event_routing import route
from services.common.log_follower import LogFollower, set_position
from services.invite_service.application import PortalAccess
from services.invite_service.envelopes import LogEnvelopes

log = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).resolve().parent.parent / "projections" / "schema.sql"
BUILD_SCHEMA = "porchlight_replay"
REPLACED_SCHEMA = "porchlight_replaced"
FOLLOWER_NAME = "replay"
# Not from the event store: kept as they are, never rebuilt (see the module's docstring).
KEPT_TABLES = ("account_deliveries",)
KEPT_PROJECTIONS = (deliveries.PROJECTION,)
# What replay rebuilds, and the handlers that build it: the live projector's for the access
# topic (projections/consumer.py). A table in projections/schema.sql in neither list stops
# replay before it swaps anything: rebuilt by nobody, it would be swapped in empty.
REBUILT_TABLES = ("account_status", "projection_applied", "projection_positions", "trip_travelers")
ACCESS_HANDLERS = (status_list.HANDLERS, status_list.on_other_event)
SWAP_ATTEMPTS = 5  # a deadlock with the live projector aborts the swap; it is then tried again

Progress = Callable[[int, int, int], None]  # (events this page, position reached, head of the log)


class ReplayBusy(RuntimeError):
    """Another replay holds the replay lock."""


class UnknownReadModel(RuntimeError):
    """projections/schema.sql defines a table replay does not know how to rebuild."""


@dataclass
class ReplayResult:
    events: int
    position: int
    tables: list[str]
    seconds: float


class Replay:
    def __init__(self, app: PortalAccess, pool: asyncpg.Pool, *, page_size: int = 2000,
                 progress: Progress | None = None) -> None:
        self._app = app
        self._pool = pool
        self._page_size = page_size
        self._progress = progress
        self._envelopes = LogEnvelopes(app, max_origins=1_000_000)
        self._handler_for = route(ACCESS_HANDLERS[0], otherwise=ACCESS_HANDLERS[1])
        self._projector = BatchProjector()
        self._conn: asyncpg.Connection | None = None
        self._writing: asyncio.Task | None = None
        self._deferred_indexes: list[str] = []
        self.events = 0

    async def _apply(self, page: Sequence[Notification]) -> None:
        """The follower's page handler: decodes the page while the previous one is being written,
        then starts writing it (decoding is Python CPU, writing mostly waits on PostgreSQL).

        So the follower stores a page's position before that page has committed. Harmless
        here: a replay never resumes from its stored position (it starts from 0 every time,
        into tables it has just created), and the build is only swapped in after `_drain`.
        """
        assert self._conn is not None
        envelopes = self._envelopes(page)
        await self._drain()
        self._writing = asyncio.create_task(
            apply_page(self._conn, self._projector, envelopes, self._handler_for, _redone_at_swap)
        )
        self.events += len(page)
        if self._progress is not None:
            self._progress(len(page), page[-1].id, self._app.recorder.max_notification_id() or 0)

    async def _drain(self, raising: bool = True) -> None:
        """Wait for the page being written, if any."""
        writing, self._writing = self._writing, None
        if writing is not None:
            if raising:
                await writing
            else:
                await asyncio.gather(writing, return_exceptions=True)

    async def run(self) -> ReplayResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        live = await self._pool.fetchval("SELECT current_schema()")
        conn = self._conn = await self._pool.acquire()
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('porchlight-replay'))"):
                raise ReplayBusy("another replay is running")
            try:
                tables = await self._create_tables(conn, live)
                follower = LogFollower(self._app.recorder, self._pool, FOLLOWER_NAME, page_size=self._page_size)
                await set_position(self._pool, FOLLOWER_NAME, 0)  # from the start of the log, every time
                built = await follower.catch_up(self._apply)
                await self._drain()
                for indexdef in self._deferred_indexes:
                    await conn.execute(indexdef)
                log.info("replay built %s up to position %d; swapping them in", ", ".join(tables), built)
                position = await self._swap(conn, live, tables, follower)
            finally:
                await self._drain(raising=False)
                await conn.execute(f"RESET ALL; DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE")
                await conn.execute("SELECT pg_advisory_unlock(hashtext('porchlight-replay'))")
        finally:
            self._conn = None
            await self._pool.release(conn)
        return ReplayResult(self.events, position, tables, loop.time() - started)

    async def _create_tables(self, conn: asyncpg.Connection, live: str) -> list[str]:
        """Fresh tables with the live DDL in the build schema; the kept tables stay live only."""
        await conn.execute(f"DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE; CREATE SCHEMA {BUILD_SCHEMA}")
        # The build schema first: unqualified names in the DDL and the handlers land there,
        # except the kept tables, which are dropped from it and so resolve to the live schema.
        await conn.execute(f"SET search_path TO {BUILD_SCHEMA}, {_ident(live)}")
        # A crash loses the build, which is started again from scratch anyway; the swap's commit is synchronous.
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(SCHEMA_SQL.read_text())
        for table in KEPT_TABLES:
            await conn.execute(f"DROP TABLE IF EXISTS {BUILD_SCHEMA}.{table}")
        # Built once at the end instead of updated row by row (a GIN index especially); unique
        # ones stay, the handlers' ON CONFLICT needs them.
        secondary = await conn.fetch(
            "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS indexdef FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND NOT i.indisunique", BUILD_SCHEMA,
        )
        for index in secondary:
            await conn.execute(f"DROP INDEX {BUILD_SCHEMA}.{_ident(index['name'])}")
        self._deferred_indexes = [index["indexdef"] for index in secondary]  # they name the build schema
        names = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", BUILD_SCHEMA
        )
        unknown = sorted({r["tablename"] for r in names} - set(REBUILT_TABLES))
        if unknown:
            raise UnknownReadModel(f"replay does not know what builds {', '.join(unknown)}: add its handlers to "
                                   "deploy/replay.py (REBUILT_TABLES, ACCESS_HANDLERS) or keep it (KEPT_TABLES)")
        # The projector claims in projection_applied first, then writes the rows: lock in that order.
        return sorted((r["tablename"] for r in names), key=lambda t: (t != "projection_applied", t))

    async def _swap(self, conn: asyncpg.Connection, live: str, tables: list[str], follower: LogFollower) -> int:
        built = follower.position
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            try:
                async with conn.transaction():
                    await conn.execute(
                        f"LOCK TABLE {', '.join(f'{_ident(live)}.{t}' for t in tables)} IN ACCESS EXCLUSIVE MODE"
                    )
                    await conn.execute("SET LOCAL synchronous_commit = on")  # this commit counts
                    position = await follower.catch_up(self._apply)  # the tail, in this transaction
                    await self._drain()
                    await self._carry_over_deliveries(conn, live)
                    await conn.execute(f"DROP SCHEMA IF EXISTS {REPLACED_SCHEMA} CASCADE; CREATE SCHEMA {REPLACED_SCHEMA}")
                    for table in tables:
                        await conn.execute(f"ALTER TABLE {_ident(live)}.{table} SET SCHEMA {REPLACED_SCHEMA}")
                        await conn.execute(f"ALTER TABLE {BUILD_SCHEMA}.{table} SET SCHEMA {_ident(live)}")
                    await conn.execute(f"DROP SCHEMA {REPLACED_SCHEMA} CASCADE")
                return position
            except asyncpg.DeadlockDetectedError:
                await self._drain(raising=False)
                log.warning("replay swap deadlocked with the live projector (attempt %d); trying again", attempt)
                await follower.rewind(built)  # the tail applied in the rolled-back transaction is gone
                if attempt == SWAP_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _carry_over_deliveries(self, conn: asyncpg.Connection, live: str) -> None:
        """Delivery applied-records into the new table, and each account's newest delivery onto its row
        (as status_list._catch_up_deliveries picks it): outcomes may have come after the build read the account."""
        await conn.execute(
            f"INSERT INTO {BUILD_SCHEMA}.projection_applied SELECT * FROM {_ident(live)}.projection_applied "
            "WHERE projection = ANY($1::text[]) ON CONFLICT DO NOTHING",
            list(KEPT_PROJECTIONS),
        )
        await conn.execute(
            f"""
            UPDATE {BUILD_SCHEMA}.account_status s SET last_delivery_status = d.status, last_delivery_at = d.at
            FROM (SELECT DISTINCT ON (account_id) account_id, status, at FROM {_ident(live)}.account_deliveries
                  ORDER BY account_id, at DESC, attempt DESC) d
            WHERE s.account_id = d.account_id AND s.last_delivery_at IS DISTINCT FROM d.at
            """
        )


@functools.cache
def _redone_at_swap(sql: str) -> bool:
    """A handler's statement that reads a kept table (an account's last delivery, status_list's
    _catch_up_deliveries): the swap sets that for every rebuilt row (_carry_over_deliveries), so
    running it per event during the build is work thrown away. (Cached: a handful of statements.)"""
    return any(f"FROM {table}" in sql for table in KEPT_TABLES)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def main(database_url: str, *, page_size: int = 2000, show_progress: bool = True) -> ReplayResult:
    """Composition root of `porchlight replay`, with a progress bar (events/s, ETA) on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from services.common.database import create_pool, eventsourcing_env

    app = await asyncio.to_thread(PortalAccess, eventsourcing_env(database_url))
    pool = await create_pool(database_url, max_size=3)
    bar = Progress(
        TextColumn("replaying the event store"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9,.0f} events/s"), TimeRemainingColumn(), disable=not show_progress,
    )
    task = bar.add_task("replay", total=app.recorder.max_notification_id() or 0, rate=0.0)

    def advance(count: int, position: int, head: int) -> None:
        # Positions, not counts, measure the way: ids may skip numbers; the head moves while we read.
        bar.update(task, completed=position, total=max(head, position))
        bar.update(task, rate=bar.tasks[0].speed or 0.0)

    try:
        with bar:
            return await Replay(app, pool, page_size=page_size, progress=advance).run()
    finally:
        await pool.close()
        app.close()
