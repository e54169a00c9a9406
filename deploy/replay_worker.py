"""Replay's worker processes: each decodes and folds its part of the log (deploy/replay_batch.py)
and copies its rows and applied-records into the build tables over a connection of its own.

Why processes: decoding and folding cost about twice what reading the log costs, and in the
reading process they shared its GIL, so the two barely overlapped. The reading process
(deploy/replay.py, through the shared log follower) splits every raw page (plain tuples of
bytes, cheap to pickle) by aggregate (an invitation's with its account's: replay_batch.Parts)
and hands each worker its part.

    main -> worker   spec                           once: its part, the transcodings, where to write
    main -> worker   ("page", (rows, handed))       its aggregates' events of a page, in log order, and
                                                    the events other workers handed it since the last
    worker -> main   ("elsewhere", {part: events})  its events that touch other parts' rows (if any)
    main -> worker   ("end", None)                  the log is read
    worker -> main   ("ended", {})                  it has folded every page it was sent
    main -> worker   ("handed", events)             the last events handed to it
    worker -> main   ("rows", counts)               its rows are copied (the indexes can start)
    worker -> main   ("done", (claims, stats))      its applied-records are copied
    worker -> main   ("error", traceback)           instead of any of these, then it exits

The applied-records are final as soon as a page is decoded, so a worker copies them while it
folds (a thread with its own connection); its rows only once it has folded everything.

A worker is started as `python -m deploy.replay_worker FD` (not multiprocessing's spawn, which
imports the parent's main module, the whole CLI, in each worker: most of a second of CPU); it
imports only what decoding and folding need. The pipe is a socket pair, the messages pickles.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from deploy.replay_batch import Parts, ReadModelFold
from services.invite_service.stored_facts import StoredFacts, _uuid_from_hex

log = logging.getLogger(__name__)

PAGE, ELSEWHERE, END, ENDED, HANDED, ROWS, DONE, ERROR = (
    "page", "elsewhere", "end", "ended", "handed", "rows", "done", "error")
CLAIMS_BATCH = 10_000  # applied-records per COPY while folding: few statements, written early


class ReplayWorkerFailed(RuntimeError):
    """A worker process raised or died: the replay stops before it swaps anything."""


@dataclass(frozen=True)
class WorkerSpec:
    part: int
    parts: int
    transcodings: dict[str, Any] | None  # the JSON transcoder's (None: decode through the Application)
    contracts: frozenset[str]  # the event types with a contract, and the event ids' namespace: without
    namespace: bytes  # them the worker would import every contract's model (stored_facts.py)
    env: dict[str, str]  # the Application's environment: its database, and the Application if needed
    schema: str  # where the build tables are
    projection: str  # whose applied-records these are (projections.status_list.PROJECTION)


# The worker's side.

def main() -> None:
    conn = Connection(int(sys.argv[1]))
    try:
        spec: WorkerSpec = pickle.loads(conn.recv_bytes())
        _Worker(conn, spec).run()
    except BaseException:
        try:
            conn.send_bytes(pickle.dumps((ERROR, traceback.format_exc())))
        except OSError:
            pass
        sys.exit(1)
    # Without the interpreter's teardown: freeing the fold's millions of objects one by one
    # took a tenth of a second of CPU while the reading process swaps; the OS frees them at once.
    os._exit(0)


class _Worker:
    def __init__(self, conn: Connection, spec: WorkerSpec) -> None:
        self._conn, self._spec = conn, spec
        self._model = ReadModelFold(spec.projection, spec.part, spec.parts)
        self._facts = StoredFacts.from_transcodings(spec.transcodings, self._application, contracts=spec.contracts,
                                                    namespace=spec.namespace)
        self._writer = _Writer(spec)
        self._copied = 0  # claims handed to the writer so far
        self._waited = 0.0  # seconds waiting for the next page: how far the reading process kept it busy
        self._stats: dict[str, float] = {}

    def _application(self) -> Any:
        from services.invite_service.application import PortalAccess  # only if an event needs the mapper

        return PortalAccess(self._spec.env)

    def _send(self, kind: str, body: Any) -> None:
        self._conn.send_bytes(pickle.dumps((kind, body), protocol=pickle.HIGHEST_PROTOCOL))

    def run(self) -> None:
        # The fold allocates millions of objects that live until the COPY and make no cycles:
        # the cyclic collector would only walk the growing heap again and again.
        gc.disable()
        self._stats["cpu to start"] = time.process_time()
        recv = self._conn.recv_bytes
        try:
            while True:
                waited = time.perf_counter()
                data = recv()
                self._waited += time.perf_counter() - waited
                kind, body = pickle.loads(data)
                if kind == PAGE:
                    rows, handed = body
                    elsewhere = self._fold(rows)
                    if elsewhere:
                        self._send(ELSEWHERE, elsewhere)
                    self._fold_handed(handed)
                    if len(self._model.claims) - self._copied >= CLAIMS_BATCH:
                        self._copy_claims()
                elif kind == END:
                    self._stats["cpu at the end of the log"] = time.process_time()
                    self._send(ENDED, {})
                elif kind == HANDED:
                    self._fold_handed(body)
                    self._stats["cpu once folded"] = time.process_time()
                    self._writer.call(self._model.write_rows, self._spec.schema).result()
                    self._send(ROWS, {table: len(rows) for table, rows in self._model.rows.items()})
                    self._copy_claims()
                    self._writer.drain()
                    self._send(DONE, (len(self._model.claims), {
                        **self._stats, "cpu once copied": time.process_time(), "waited for pages": self._waited,
                    }))
                    return
                else:
                    raise ValueError(f"unexpected message {kind!r}")
        finally:
            self._writer.close()

    def _copy_claims(self) -> None:
        claims = self._model.claims[self._copied:]
        self._copied += len(claims)
        self._writer.call(ReadModelFold.write_claims, claims, self._spec.schema)

    def _fold(self, rows: list[tuple[Any, ...]]) -> dict[int, list[tuple[Any, ...]]]:
        if not rows:
            return {}
        facts = self._facts.rows(rows)
        return {
            # With the aggregate's origin: the other part may never have read its first event.
            other: [(rows[i], facts[i].workspace, facts[i].account_id.hex if facts[i].account_id else None)
                    for i in indexes]
            for other, indexes in self._model.fold(facts).items()
        }

    def _fold_handed(self, handed: list[tuple[Any, ...]]) -> None:
        if not handed:
            return
        for row, workspace, account in handed:
            self._facts.know_origin(row[1], (workspace, _uuid_from_hex(account) if account else None))
        self._model.fold(self._facts.rows([row for row, _, _ in handed]), own=False)


class _Writer:
    """The worker's connection, on an event loop in a thread of its own: the COPYs (mostly
    PostgreSQL's time) go on while the worker folds. One statement at a time, in order."""

    def __init__(self, spec: WorkerSpec) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="replay-writer", daemon=True)
        self._thread.start()
        self._pending: list[Future] = []
        self._conn: Future = asyncio.run_coroutine_threadsafe(self._connect(spec), self._loop)

    @staticmethod
    async def _connect(spec: WorkerSpec) -> Any:
        import asyncpg

        from services.common.database import asyncpg_connect_args

        conn = await asyncpg.connect(**asyncpg_connect_args(spec.env))
        if not await conn.fetchval("SELECT to_regnamespace($1) IS NOT NULL", spec.schema):
            await conn.close()
            raise ReplayWorkerFailed(f"schema {spec.schema} is not in the database the event store is in")
        # As the reading process's own session: a crash loses the build, which starts again from scratch
        # anyway, and the swap's commit, synchronous, flushes the WAL of everything before it. The
        # last COPY (the rows, which the indexes wait for) then does not wait for its flush.
        await conn.execute("SET synchronous_commit = off")
        return conn

    def call(self, write: Callable[..., Any], *args: Any) -> Future:
        """Run `write(conn, *args)` after the writes before it; raises here a failure of any of them."""
        for future in [f for f in self._pending if f.done()]:
            future.result()
            self._pending.remove(future)
        before = self._pending[-1] if self._pending else None

        async def run() -> None:
            if before is not None:
                await asyncio.wrap_future(before)
            await write(await asyncio.wrap_future(self._conn), *args)

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        self._pending.append(future)
        return future

    def drain(self) -> None:
        for future in self._pending:
            future.result()
        self._pending = []

    def close(self) -> None:
        async def close() -> None:
            if self._conn.done() and self._conn.exception() is None:
                await self._conn.result().close()

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


# The reading process's side.

class FoldWorkers:
    """The worker processes of one replay, started at once (they import while the build's tables
    are made) and stopped by `close`, whatever happened. A thread per worker reads what it says."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        self._procs: list[subprocess.Popen] = []
        self._conns: list[Connection] = []
        self._sending: list[asyncio.Future] = []
        self._loop = asyncio.get_running_loop()
        self._said: list[asyncio.Queue] = []
        self._handed: list[list[Any]] = [[] for _ in specs]  # events for each worker's next message
        self._parts = Parts(len(specs))
        try:
            for spec in specs:
                ours, theirs = socket.socketpair()
                with theirs:
                    self._procs.append(subprocess.Popen(
                        [sys.executable, "-m", "deploy.replay_worker", str(theirs.fileno())],
                        pass_fds=(theirs.fileno(),),
                    ))
                conn = Connection(ours.detach())
                self._conns.append(conn)
                self._said.append(asyncio.Queue())
                conn.send_bytes(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
                threading.Thread(target=self._listen, args=(len(self._conns) - 1,), daemon=True,
                                 name=f"replay-worker-{len(self._conns)}").start()
        except BaseException:
            self.close()
            raise

    def _listen(self, i: int) -> None:
        """Whatever worker `i` says, onto its queue, until it is done, fails or is gone (None, None)."""
        while True:
            try:
                message = pickle.loads(self._conns[i].recv_bytes())
            except (EOFError, OSError):
                message = (None, None)
            try:
                self._loop.call_soon_threadsafe(self._said[i].put_nowait, message)
            except RuntimeError:
                return  # the loop is closed: nobody listens any more
            if message[0] in (DONE, ERROR, None):
                return

    async def send_page(self, rows: list[tuple[Any, ...]]) -> None:
        """Hand each worker its aggregates' events of a page (and what the others handed it).
        Returns once the previous page is taken (a page or two ahead of the slowest worker, no
        more), the sends going on in threads."""
        await self._sent()
        self._take_said()
        parts = len(self._conns)
        if parts == 1:
            split = [rows]
        else:
            split = [[] for _ in range(parts)]
            part_of = self._parts.of
            for row in rows:
                split[part_of(row)].append(row)
        messages = []
        for i, own in enumerate(split):
            handed, self._handed[i] = self._handed[i], []
            if own or handed:
                messages.append((i, pickle.dumps((PAGE, (own, handed)), protocol=pickle.HIGHEST_PROTOCOL)))
        self._sending = [asyncio.ensure_future(asyncio.to_thread(self._send_bytes, i, data)) for i, data in messages]

    def _take_said(self) -> None:
        """What the workers said since: events they hand each other; or an error, raised."""
        for i, said in enumerate(self._said):
            while not said.empty():
                kind, body = said.get_nowait()
                if kind != ELSEWHERE:
                    self._failed(i, kind, body)
                self._hand(body)

    def _hand(self, elsewhere: dict[int, list[Any]]) -> None:
        for other, events in elsewhere.items():
            self._handed[other].extend(events)

    async def finish(self, rows_in: Callable[[], None]) -> tuple[dict[str, int], int]:
        """The log is read: hand each worker the rest of the others' events that touch its rows,
        and wait for the copies. `rows_in` is called once every worker's rows are in (their
        applied-records may still be copying). Answers the rows and the applied-records written."""
        await self._sent()
        end = pickle.dumps((END, None))
        for i in range(len(self._conns)):
            await asyncio.to_thread(self._send_bytes, i, end)
        for i in range(len(self._conns)):
            while True:
                kind, body = await self._said[i].get()
                if kind not in (ELSEWHERE, ENDED):
                    self._failed(i, kind, body)
                self._hand(body)
                if kind == ENDED:
                    break
        for i in range(len(self._conns)):
            handed, self._handed[i] = self._handed[i], []
            await asyncio.to_thread(self._send_bytes, i, pickle.dumps((HANDED, handed), pickle.HIGHEST_PROTOCOL))
        rows: dict[str, int] = {}
        for i in range(len(self._conns)):
            for table, count in (await self._expect(i, ROWS)).items():
                rows[table] = rows.get(table, 0) + count
        rows_in()
        claims = 0
        for i in range(len(self._conns)):
            count, stats = await self._expect(i, DONE)
            claims += count
            log.debug("replay worker %d: %s", i + 1, ", ".join(f"{k} {v:.2f}" for k, v in stats.items()))
        return rows, claims

    async def _sent(self) -> None:
        sending, self._sending = self._sending, []
        try:
            for future in sending:
                await future
        finally:
            await asyncio.gather(*sending, return_exceptions=True)

    async def _expect(self, i: int, kind: str) -> Any:
        got, body = await self._said[i].get()
        if got != kind:
            self._failed(i, got, body)
        return body

    def _send_bytes(self, i: int, data: bytes) -> None:
        try:
            self._conns[i].send_bytes(data)
        except OSError:
            self._failed(i, None, None)

    def _failed(self, i: int, kind: str | None, body: Any) -> None:
        proc = self._procs[i]
        if kind == ERROR:
            raise ReplayWorkerFailed(f"replay worker {i + 1} of {len(self._procs)} (pid {proc.pid}) failed; "
                                     f"nothing was swapped in:\n{body}")
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        raise ReplayWorkerFailed(
            f"replay worker {i + 1} of {len(self._procs)} (pid {proc.pid}) "
            + (f"died (exit status {code})" if kind is None else f"answered {kind!r} out of turn")
            + "; nothing was swapped in"
        )

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self._procs:
            proc.wait()
        for conn in self._conns:
            conn.close()


if __name__ == "__main__":
    main()
