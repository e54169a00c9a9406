"""`porchlight replay`: rebuild every read model from the event store, then swap it in at once.

Rule 3 of the architecture: read models are disposable. Replay reads the notification log
through the shared log follower (not Kafka), as raw pages, and hands them to worker
processes (deploy/replay_worker.py) that decode each stored event straight into its facts
(services/invite_service/stored_facts.py) and fold them into rows with the live projector's
own rules (projections/status_rows.py: what each event does to a row, the one definition
both apply), in memory; each worker then writes its rows with one COPY per table
(deploy/replay_batch.py). Each worker holds a part of the rows, and each aggregate's events
are folded in their order (deploy/replay_batch.py says how).

    build  : schema `porchlight_replay`, the projections' DDL (projections/schema.sql) run
             in it, without its secondary indexes (nor the applied-records' primary key,
             put back onto its index once built); the whole log folded by the workers
             while this process reads it (from the start, every time: the follower's position
             is not stored page by page), their applied-records copied there as they go
             and their rows at the end; then the indexes. The API and the live projector
             meanwhile use the live tables, untouched. A worker that fails or dies stops the
             replay here, with its error.
    swap   : one transaction. Lock the live tables (the projector and the API wait, briefly),
             apply the tail of the log that arrived during the build to the rebuilt tables
             as the live projector applies an event (status_list.write_folded), move the live
             tables out and the rebuilt ones in (`ALTER TABLE ... SET SCHEMA`), drop the old
             ones. Anything the projector applied to the old tables came from the log, so the
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
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from eventsourcing.persistence import JSONTranscoder, Notification

from deploy.replay_batch import ReadModelFold, advance_position, claim_of
from deploy.replay_worker import FoldWorkers, ReplayWorkerFailed, WorkerSpec
from projections import deliveries, status_list, status_rows
from services.common.database import quote_ident
from services.common.event_routing import handled_type
from services.common.log_follower import LogFollower, RawRow, set_position
from services.invite_service.application import PortalAccess
from services.invite_service.stored_facts import StoredFacts, contract_names, event_id_namespace

log = logging.getLogger(__name__)

SCHEMA_SQL = Path(__file__).resolve().parent.parent / "projections" / "schema.sql"
BUILD_SCHEMA = "porchlight_replay"
REPLACED_SCHEMA = "porchlight_replaced"
FOLLOWER_NAME = "replay"
# Not from the event store: kept as they are, never rebuilt (see the module's docstring).
KEPT_TABLES = ("account_deliveries",)
KEPT_PROJECTIONS = (deliveries.PROJECTION,)
# What replay rebuilds, with the live projector's rules (status_rows.EFFECTS). A table in
# projections/schema.sql in neither list stops replay before it swaps anything: rebuilt by
# nobody, it would be swapped in empty. So does a live handler (status_list.HANDLERS) for an
# event type the rules do not know: replay would leave out what it does.
REBUILT_TABLES = ("account_status", "projection_applied", "projection_positions", "trip_travelers")
SWAP_ATTEMPTS = 5  # a deadlock with the live projector aborts the swap; it is then tried again
# Worker processes that decode and fold (deploy/replay_worker.py): one per core (at most four).
# This process and PostgreSQL need less than a core while the workers fold; each part more costs
# a start of the decoder, and the more parts, the more events touch another part's rows and are
# decoded again there (a trip share naming several accounts; an invite's events all go to its
# account's part). On two cores two workers beat one by 10-20% (bench/README.md).
def _default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, min(4, cores))


WORKERS = _default_workers()
_DATABASE_ENV = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DBNAME")
__all__ = ["Replay", "ReplayBusy", "ReplayResult", "ReplayWorkerFailed", "UnknownReadModel", "main"]

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
    phases: dict[str, float] = field(default_factory=dict)


class Replay:
    def __init__(self, app: PortalAccess, pool: asyncpg.Pool, *, page_size: int = 2000,
                 progress: Progress | None = None, workers: int = WORKERS) -> None:
        self._app = app
        self._pool = pool
        self._page_size = page_size
        self._progress = progress
        self._worker_count = max(1, workers)
        self._facts = StoredFacts(app)  # the swap's tail, folded here
        self._workers: FoldWorkers | None = None
        self._conn: asyncpg.Connection | None = None
        self._deferred_indexes: list[str] = []
        self._deferred_keys: list[str] = []  # ALTER TABLE ... USING INDEX, once their indexes are built
        self.events = 0

    async def _apply(self, page: list[RawRow]) -> None:
        """The follower's page handler in the build: the raw page goes to the workers, and the
        follower reads the next one while they decode and fold it.

        The follower does not store its position after each page (`store=False`): a replay
        never resumes from it (it starts from 0 every time), and nothing is swapped in before
        every worker has copied its rows."""
        assert self._workers is not None
        await self._workers.send_page(page)
        self.events += len(page)
        if self._progress is not None:
            self._progress(len(page), page[-1][0], self._app.recorder.max_notification_id() or 0)

    async def run(self) -> ReplayResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        marks = [started]

        def phase(name: str) -> None:  # seconds each step took, for the log and bench/replay.py
            marks.append(loop.time())
            phases[name] = marks[-1] - marks[-2]

        phases: dict[str, float] = {}
        live = await self._pool.fetchval("SELECT current_schema()")
        conn = self._conn = await self._pool.acquire()
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('porchlight-replay'))"):
                raise ReplayBusy("another replay is running")
            try:
                _check_rules()
                # Started first: they import while the tables are made and the first pages read.
                self._workers = FoldWorkers(self._specs())
                tables = await self._create_tables(conn, live)
                follower = LogFollower(self._app.recorder, self._pool, FOLLOWER_NAME, page_size=self._page_size)
                await set_position(self._pool, FOLLOWER_NAME, 0)  # from the start of the log, every time
                built = await follower.catch_up(self._apply, raw=True, store=False)
                phase("read (folded alongside)")
                await self._build(conn, built, phase)
                log.info("replay built %s up to position %d; swapping them in", ", ".join(tables), built)
                position = await self._swap(conn, live, tables, follower)
                phase("swap")
            finally:
                if self._workers is not None:
                    self._workers.close()
                    self._workers = None
                await conn.execute(f"RESET ALL; DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE")
                await conn.execute("SELECT pg_advisory_unlock(hashtext('porchlight-replay'))")
        finally:
            self._conn = None
            await self._pool.release(conn)
        log.info("replay took %s", ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()))
        return ReplayResult(self.events, position, tables, loop.time() - started, phases)

    async def _build(self, conn: asyncpg.Connection, built: int, phase: Callable[[str], None]) -> None:
        """The workers fold what they were handed by each other and copy their rows, then their
        applied-records; the deferred indexes are built as soon as the rows are in."""
        assert self._workers is not None
        claims_in = asyncio.Event()
        indexing: list[asyncio.Task] = []

        def rows_in() -> None:
            phase("fold the rest, copy the rows")
            indexing.append(asyncio.create_task(self._build_indexes(claims_in)))

        try:
            _, claims = await self._workers.finish(rows_in)
            claims_in.set()
            if claims:
                await advance_position(conn, status_list.PROJECTION, built)
            for task in indexing:
                await task
        finally:
            for task in indexing:
                task.cancel()
            await asyncio.gather(*indexing, return_exceptions=True)
        phase("index (claims copied alongside)")

    def _specs(self) -> list[WorkerSpec]:
        mapper = self._app.mapper
        # The workers decode as StoredFacts does, with the transcoder's transcodings; an event
        # store with a cipher or compression is decoded through the Application instead.
        plain = type(mapper.transcoder) is JSONTranscoder and mapper.cipher is None and mapper.compressor is None
        transcodings = dict(mapper.transcoder.names) if plain else None
        env = {**self._app.env, **{key: self._app.env.get(key) or "" for key in _DATABASE_ENV}}
        return [WorkerSpec(part, self._worker_count, transcodings, contract_names(), event_id_namespace(), env,
                           BUILD_SCHEMA, status_list.PROJECTION)
                for part in range(self._worker_count)]

    async def _build_indexes(self, claims_in: asyncio.Event) -> None:
        """The deferred indexes, two at a time on connections of their own (each index is built by
        one backend; a GIN index over trigrams takes longest)."""
        # The longest first, so that the two builders end together: a GIN index (the trigram
        # index takes longest, and was last), then the widest. The applied-records' own index
        # last, once the workers have copied them.
        pending = sorted(self._deferred_indexes, key=lambda indexdef: (
            "projection_applied" in indexdef, "USING gin" not in indexdef, -indexdef.count(","),
        ))

        async def builder() -> None:
            async with self._pool.acquire() as conn, conn.transaction():
                # Two builders already keep two cores busy: a parallel build's own workers (PostgreSQL's
                # default, two) only add their start and the merge of their sorts, ~0.1 s of CPU here.
                # Not waiting for the WAL flush at the commit either (see _create_tables).
                await conn.execute("SET LOCAL maintenance_work_mem = '256MB'; "
                                   "SET LOCAL max_parallel_maintenance_workers = 0; SET LOCAL synchronous_commit = off")
                while pending:
                    indexdef = pending.pop(0)
                    if "projection_applied" in indexdef:
                        await claims_in.wait()
                    started = asyncio.get_running_loop().time()
                    await conn.execute(indexdef)
                    log.debug("built in %.2f s: %s", asyncio.get_running_loop().time() - started, indexdef)

        await asyncio.gather(*(builder() for _ in range(min(2, len(pending)))))
        async with self._pool.acquire() as conn:
            for statement in self._deferred_keys:  # the constraint onto its built index: no scan, no sort
                await conn.execute(statement)

    async def _create_tables(self, conn: asyncpg.Connection, live: str) -> list[str]:
        """Fresh tables with the live DDL in the build schema; the kept tables stay live only."""
        await conn.execute(f"DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE; CREATE SCHEMA {BUILD_SCHEMA}")
        # The build schema first: unqualified names in the DDL and the handlers land there,
        # except the kept tables, which are dropped from it and so resolve to the live schema.
        await conn.execute(f"SET search_path TO {BUILD_SCHEMA}, {quote_ident(live)}")
        # A crash loses the build, which is started again from scratch anyway; the swap's commit is synchronous.
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(SCHEMA_SQL.read_text())
        for table in KEPT_TABLES:
            await conn.execute(f"DROP TABLE IF EXISTS {BUILD_SCHEMA}.{table}")
        # Built once the rows are in (a GIN index especially); unique ones stay, the swap's
        # upsert of the tail needs them.
        secondary = await conn.fetch(
            "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS indexdef FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND NOT i.indisunique", BUILD_SCHEMA,
        )
        for index in secondary:
            await conn.execute(f"DROP INDEX {BUILD_SCHEMA}.{quote_ident(index['name'])}")
        self._deferred_indexes = [index["indexdef"] for index in secondary]  # they name the build schema
        # So is the applied-records' primary key: built from the copied records by a sort, it
        # costs less than a hundred thousand inserts into a btree while the workers copy (by
        # aggregate id: all over the index). The constraint is put back onto that index before
        # the swap, whose upsert of the tail needs it. The rows' keys stay: a row is copied once.
        keys = await conn.fetch(
            "SELECT t.relname AS table, k.conname AS name, pg_get_indexdef(k.conindid) AS indexdef "
            "FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = $1 AND k.contype = 'p' AND t.relname = 'projection_applied'", BUILD_SCHEMA,
        )
        for key in keys:
            await conn.execute(f"ALTER TABLE {BUILD_SCHEMA}.{quote_ident(key['table'])} DROP CONSTRAINT {quote_ident(key['name'])}")
        self._deferred_indexes += [key["indexdef"] for key in keys]
        self._deferred_keys = [f"ALTER TABLE {BUILD_SCHEMA}.{quote_ident(key['table'])} ADD CONSTRAINT {quote_ident(key['name'])} "
                               f"PRIMARY KEY USING INDEX {quote_ident(key['name'])}" for key in keys]
        names = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", BUILD_SCHEMA
        )
        unknown = sorted({r["tablename"] for r in names} - set(REBUILT_TABLES))
        if unknown:
            raise UnknownReadModel(f"replay does not know what builds {', '.join(unknown)}: add its handlers to "
                                   "projections/status_rows.py and deploy/replay_batch.py or keep it "
                                   "(deploy/replay.py KEPT_TABLES)")
        # The projector claims in projection_applied first, then writes the rows: lock in that order.
        return sorted((r["tablename"] for r in names), key=lambda t: (t != "projection_applied", t))

    async def _swap(self, conn: asyncpg.Connection, live: str, tables: list[str], follower: LogFollower) -> int:
        built = follower.position
        for attempt in range(1, SWAP_ATTEMPTS + 1):
            try:
                async with conn.transaction():
                    await conn.execute(
                        f"LOCK TABLE {', '.join(f'{quote_ident(live)}.{t}' for t in tables)} IN ACCESS EXCLUSIVE MODE"
                    )
                    await conn.execute("SET LOCAL synchronous_commit = on")  # this commit counts
                    position = await follower.catch_up(self._apply_tail)  # the tail, in this transaction
                    await self._carry_over_deliveries(conn, live)
                    await conn.execute(f"DROP SCHEMA IF EXISTS {REPLACED_SCHEMA} CASCADE; CREATE SCHEMA {REPLACED_SCHEMA}")
                    for table in tables:
                        await conn.execute(f"ALTER TABLE {quote_ident(live)}.{table} SET SCHEMA {REPLACED_SCHEMA}")
                        await conn.execute(f"ALTER TABLE {BUILD_SCHEMA}.{table} SET SCHEMA {quote_ident(live)}")
                    await conn.execute(f"DROP SCHEMA {REPLACED_SCHEMA} CASCADE")
                return position
            except asyncpg.DeadlockDetectedError:
                log.warning("replay swap deadlocked with the live projector (attempt %d); trying again", attempt)
                await follower.rewind(built)  # the tail applied in the rolled-back transaction is gone
                if attempt == SWAP_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _apply_tail(self, page: Sequence[Notification]) -> None:
        """The log's tail (what committed during the build), in the swap's transaction: as the live
        projector applies an event (status_list.write_folded: read the row, fold, write what
        changed), on the build tables (first on the search path). A rollback takes it all back."""
        conn = self._conn
        assert conn is not None
        facts = self._facts(page)
        for fact in facts:
            for table, key, fold in status_rows.effects(fact):  # type: ignore[arg-type]
                await status_list.write_folded(conn, table, key, fold)
        await ReadModelFold.write_claims(conn, [claim_of(status_list.PROJECTION, fact) for fact in facts])
        await advance_position(conn, status_list.PROJECTION, page[-1].id)
        self.events += len(page)

    async def _carry_over_deliveries(self, conn: asyncpg.Connection, live: str) -> None:
        """Delivery applied-records into the new table, and each account's newest delivery onto its row
        (as status_list._catch_up_deliveries picks it): outcomes may have come after the build read the account."""
        await conn.execute(
            f"INSERT INTO {BUILD_SCHEMA}.projection_applied SELECT * FROM {quote_ident(live)}.projection_applied "
            "WHERE projection = ANY($1::text[]) ON CONFLICT DO NOTHING",
            list(KEPT_PROJECTIONS),
        )
        await conn.execute(
            f"""
            UPDATE {BUILD_SCHEMA}.account_status s SET last_delivery_status = d.status, last_delivery_at = d.at
            FROM (SELECT DISTINCT ON (account_id) account_id, status, at FROM {quote_ident(live)}.account_deliveries
                  WHERE audience = 'client' ORDER BY account_id, at DESC, attempt DESC) d
            WHERE s.account_id = d.account_id AND s.last_delivery_at IS DISTINCT FROM d.at
            """
        )


def _check_rules() -> None:
    """Every event type the live projector handles has its rule in status_rows (else replay would skip it)."""
    missing = sorted({handled_type(h) for h in status_list.HANDLERS} - set(status_rows.EFFECTS))
    if missing:
        raise UnknownReadModel(f"the live projector handles {', '.join(missing)} but projections/status_rows.py "
                               "has no rule for it: replay would leave out what it does")


async def main(database_url: str, *, page_size: int = 2000, show_progress: bool = True,
               workers: int = WORKERS) -> ReplayResult:
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
            return await Replay(app, pool, page_size=page_size, progress=advance, workers=workers).run()
    finally:
        await pool.close()
        app.close()
