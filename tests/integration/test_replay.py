"""`porchlight replay` rebuilds the read models from the event store and swaps them in while
the API keeps answering; the result equals what the live projector built, row for row.

A database of its own: replay rebuilds the whole of every read model, and the shared
database's tables hold rows other tests projected from envelopes that are not in its log.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from uuid import uuid4

import pytest

from contracts import DeliveryOutcomeV1
from deploy.replay import Replay
from projections.main import run as run_projector
from services.common.database import create_pool, eventsourcing_env
from services.common.kafka import create_producer, ensure_topics
from services.common.settings import ApiSettings, ProjectorSettings
from services.invite_service.application import InviteCommand, PortalAccess
from services.invite_service.domain import ids
from services.invite_service.relay import Relay
from tests.conftest import SECRET_KEY, STAFF_JWT_SECRET
from tests.helpers import poll_until, unique
from tests.integration.conftest import auth, serve
from tests.integration.databases import own_database  # noqa: F401 - fixture

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}
# applied_at is when a row was claimed (now() at apply time): the replay claims later, by design.
VOLATILE = {"projection_applied": {"applied_at"}, "projection_positions": {"updated_at"}}
TABLES = {  # table -> its key, to compare row for row in a stable order
    "account_status": "account_id",
    "projection_applied": "projection, aggregate_id, version",
    "account_deliveries": "delivery_id, attempt",
    "projection_positions": "projection",
    "trip_travelers": "workspace, trip_id, traveler_key",
}


@pytest.fixture
async def live(own_database, kafka_bootstrap):  # noqa: F811 - the fixture, by name
    """The Application, a pool, and the live pipeline (relay -> Kafka -> projector) on this database."""
    topics = {"access": unique("t.access"), "deliveries": unique("t.deliveries"), "dlq": unique("t.dlq")}
    await ensure_topics(kafka_bootstrap, list(topics.values()))
    app = PortalAccess(eventsourcing_env(own_database), secret_key=SECRET_KEY.encode())
    pool = await create_pool(own_database, max_size=5)
    relay = Relay(app, pool, kafka_bootstrap, topics["access"], "relay")
    projector = ProjectorSettings(
        database_url=own_database, kafka_bootstrap_servers=kafka_bootstrap, access_topic=topics["access"],
        deliveries_topic=topics["deliveries"], dlq_topic=topics["dlq"], projector_group_id=unique("projector"),
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(run_projector(projector))]
    try:
        yield app, pool, topics
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pool.close()
        app.close()


async def seed(app: PortalAccess, ws: str, count: int, claims: int) -> None:
    await app.configure_workspace(ws, {"plan": "pro", "name": "Pride Travelers"}, STAFF)
    invited = await asyncio.gather(*(
        app.invite(ws, InviteCommand(email=f"c{i}@example.com", name=f"Client {i}", role="customer",
                                     company="Acme" if i % 2 else None), STAFF)
        for i in range(count)
    ))
    for result in invited[:claims]:
        token = app.claim_link("http://x", app.repository.get(result.invitation_id)).rsplit("/", 1)[1]
        await app.claim(ws, token)
    # Every staff action the list shows, after the claims (an active account disabled and back,
    # with and without a reason), so replay's rules meet each event type the live projector applies.
    actions = [["disable"], ["disable", "reenable"], ["resend"], ["revoke"], ["resend", "resend"],
               ["revoke", "reactivate"]]
    for result, steps in zip(invited[claims - 2:] if claims >= 2 else [], actions, strict=False):
        for step in steps:
            await app.act_on_account(ws, result.account_id, step, STAFF,
                                     reason="left the company" if step == "disable" else None)


async def projected_everything(app: PortalAccess, pool) -> bool:
    """Every stored event is recorded as applied by the status list (each one, whatever its type)."""
    stored = len(app.recorder.select_notifications(1, 1_000_000))
    return await pool.fetchval("SELECT count(*) FROM projection_applied WHERE projection = 'status_list'") == stored


async def snapshot(pool) -> dict[str, list[dict]]:
    out = {}
    for table, key in TABLES.items():
        rows = await pool.fetch(f"SELECT * FROM {table} ORDER BY {key}")
        out[table] = [{k: v for k, v in r.items() if k not in VOLATILE.get(table, ())} for r in rows]
    return out


async def publish_delivery(bootstrap: str, topic: str, ws: str, email: str) -> DeliveryOutcomeV1:
    outcome = DeliveryOutcomeV1(
        delivery_id=uuid4(), event_id=uuid4(), account_id=ids.account_id(ws, email), workspace=ws, channel="email",
        provider="smtp", status="sent", attempt=1, at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    )
    producer = create_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, outcome.model_dump_json().encode(), key=outcome.key)
    finally:
        await producer.stop()
    return outcome


async def list_while(api, ws: str, done: asyncio.Event) -> list[tuple[int, int]]:
    """List the workspace's accounts in a loop until `done`: (status, items) of each answer."""
    headers = auth(_token(ws))
    answers = []
    while not done.is_set() or not answers:
        response = await api.get(f"/v1/workspaces/{ws}/accounts", params={"limit": 200}, headers=headers)
        answers.append((response.status_code, len(response.json().get("items", []))))
        await asyncio.sleep(0)  # let the replay run between requests
    return answers


def _token(ws: str) -> str:
    from services.common.staff_auth import make_staff_token

    return make_staff_token(STAFF_JWT_SECRET, sub="staff-1", ws=ws, role="owner")


def api_settings(database_url: str, bootstrap: str) -> ApiSettings:
    return ApiSettings(database_url=database_url, kafka_bootstrap_servers=bootstrap,
                       porchlight_secret_key=SECRET_KEY, staff_jwt_secret=STAFF_JWT_SECRET)


async def test_replay_equals_the_live_projection_while_the_api_answers(live, own_database, kafka_bootstrap):  # noqa: F811
    app, pool, topics = live
    ws = unique("ws")
    await seed(app, ws, count=40, claims=5)
    delivered = await publish_delivery(kafka_bootstrap, topics["deliveries"], ws, "c7@example.com")
    await poll_until(lambda: projected_everything(app, pool), what="the live projector to apply every event")
    await poll_until(lambda: pool.fetchval("SELECT true FROM account_status WHERE account_id = $1 AND "
                                           "last_delivery_status = 'sent'", delivered.account_id),
                     what="the delivery outcome on its account")
    before = await snapshot(pool)
    assert len(before["account_status"]) == 40
    indexes = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname"
    indexes_before = await pool.fetch(indexes)
    # The build drops the applied-records' primary key and puts it back onto the index it builds.
    keys = ("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2")
    keys_before = await pool.fetch(keys)

    async with serve(api_settings(own_database, kafka_bootstrap)) as api:
        done = asyncio.Event()
        lister = asyncio.create_task(list_while(api, ws, done))
        try:
            result = await Replay(app, pool, page_size=16).run()  # small pages: many of them while the API answers
        finally:
            done.set()
            answers = await lister
    assert result.tables == ["projection_applied", "account_status", "projection_positions", "trip_travelers"]
    assert answers and all(answer == (200, 40) for answer in answers), answers

    after = await snapshot(pool)
    for table in TABLES:
        assert after[table] == before[table], table
    assert await pool.fetch(indexes) == indexes_before, "the same indexes (the build defers them, then makes them)"
    assert await pool.fetch(keys) == keys_before, "the same constraints"

    # The live projector goes on, on the new tables: a new invite shows up, applied once.
    await app.invite(ws, InviteCommand(email="later@example.com", name=None, role="customer"), STAFF)
    await poll_until(lambda: projected_everything(app, pool), what="the new invite projected on the new tables")
    assert await pool.fetchval("SELECT count(*) FROM account_status WHERE workspace = $1", ws) == 41


async def test_events_during_the_replay_are_not_lost_in_the_swap(live):
    """Invites keep coming while the replay builds; the live projector applies them to the old
    tables, also after the build read its last page. The swap brings them along (it applies the
    log's tail under the lock), and the projector goes on on the new tables. Afterwards the
    tables equal a second, quiet replay of the whole log."""
    app, pool, _ = live
    ws = unique("ws")
    await seed(app, ws, count=30, claims=3)
    await poll_until(lambda: projected_everything(app, pool), what="the first invites projected")

    stop = asyncio.Event()

    async def keep_inviting() -> int:
        sent = 0
        while not stop.is_set():
            await app.invite(ws, InviteCommand(email=f"during{sent}@example.com", name=None, role="customer"), STAFF)
            sent += 1
            await asyncio.sleep(0.005)
        return sent

    writer = asyncio.create_task(keep_inviting())

    class SlowToSwap(Replay):
        """Holds the swap until invites committed after the build's last page are in the old tables."""

        async def _swap(self, conn, live, tables, follower):
            built = follower.position
            await poll_until(lambda: asyncio.sleep(0, app.recorder.max_notification_id() > built + 6),
                             what="invites after the build")
            stop.set()
            await asyncio.wait([writer])
            await poll_until(lambda: projected_everything(app, pool), what="the old tables to have them")
            return await super()._swap(conn, live, tables, follower)

    try:
        await SlowToSwap(app, pool, page_size=8).run()
    finally:
        stop.set()
        sent = await writer
    await app.invite(ws, InviteCommand(email="after@example.com", name=None, role="customer"), STAFF)
    await poll_until(lambda: projected_everything(app, pool), what="the projector to apply the invite after the swap")
    live_tables = await snapshot(pool)
    assert len(live_tables["account_status"]) == 30 + sent + 1

    await Replay(app, pool).run()
    assert await snapshot(pool) == live_tables


async def test_a_read_model_replay_cannot_build_stops_it_before_the_swap(own_database, tmp_path, monkeypatch):  # noqa: F811
    """A table added to the projections' DDL without telling replay how to build it would be swapped in
    empty; replay refuses instead, and the live tables stay as they were."""
    from deploy import replay

    schema = tmp_path / "schema.sql"
    schema.write_text(replay.SCHEMA_SQL.read_text() + "\nCREATE TABLE IF NOT EXISTS sign_in_activity (id int);\n")
    monkeypatch.setattr(replay, "SCHEMA_SQL", schema)
    app = PortalAccess(eventsourcing_env(own_database), secret_key=SECRET_KEY.encode())
    pool = await create_pool(own_database, max_size=3)
    try:
        ws = unique("ws")
        await seed(app, ws, count=3, claims=0)
        await pool.execute("INSERT INTO account_status (account_id, workspace, invited_at, updated_at) "
                           "VALUES (gen_random_uuid(), 'kept', now(), now())")
        with pytest.raises(replay.UnknownReadModel, match="sign_in_activity"):
            await Replay(app, pool).run()
        assert await pool.fetchval("SELECT count(*) FROM account_status WHERE workspace = 'kept'") == 1
        assert await pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", replay.BUILD_SCHEMA) == 0
    finally:
        await pool.close()
        app.close()


async def test_replays_with_one_worker_and_with_three_build_the_same_tables(own_database):  # noqa: F811
    """Three workers each fold a part of the rows and hand each other the events that touch the
    others' parts (every invite's InviteSent is the invitation's, its row the account's): the
    tables equal those one worker builds from the whole log."""
    app = PortalAccess(eventsourcing_env(own_database), secret_key=SECRET_KEY.encode())
    pool = await create_pool(own_database, max_size=3)
    try:
        await seed(app, unique("ws"), count=40, claims=6)
        await Replay(app, pool, page_size=16, workers=1).run()
        one = await snapshot(pool)
        result = await Replay(app, pool, page_size=16, workers=3).run()
        assert result.events == len(app.recorder.select_notifications(1, 1_000_000))
        assert await snapshot(pool) == one
        assert len(one["account_status"]) == 40
    finally:
        await pool.close()
        app.close()


async def _replay_fails_and_leaves_the_live_tables(own_database, make_replay, match: str) -> None:  # noqa: F811
    from deploy import replay

    app = PortalAccess(eventsourcing_env(own_database), secret_key=SECRET_KEY.encode())
    pool = await create_pool(own_database, max_size=3)
    try:
        await seed(app, unique("ws"), count=30, claims=0)
        await Replay(app, pool).run()
        before = await snapshot(pool)
        replaying = make_replay(app, pool)
        with pytest.raises(replay.ReplayWorkerFailed, match=match):
            await replaying.run()
        assert await snapshot(pool) == before
        assert await pool.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", replay.BUILD_SCHEMA) == 0
        assert all(proc.poll() is not None for proc in replaying.procs), "no worker left running"
        await Replay(app, pool).run()  # the lock was let go: a replay can run again
    finally:
        await pool.close()
        app.close()


async def test_a_worker_that_dies_fails_the_replay_with_the_live_tables_untouched(own_database):  # noqa: F811
    import os
    import signal

    class KillsAWorker(Replay):
        procs: list = []

        async def _apply(self, page):
            await super()._apply(page)
            self.procs = self._workers._procs
            if self.events <= len(page):  # after the first page
                os.kill(self.procs[1].pid, signal.SIGKILL)

    await _replay_fails_and_leaves_the_live_tables(
        own_database, lambda app, pool: KillsAWorker(app, pool, page_size=4, workers=2), r"worker 2 of 2 .* died")


async def test_a_worker_that_fails_says_why(own_database):  # noqa: F811
    """A worker's own error (here: it cannot find the build tables) comes back with its traceback."""
    from deploy.replay_worker import WorkerSpec

    class WritesNowhere(Replay):
        procs: list = []

        def _specs(self):
            return [WorkerSpec(**{**vars(spec), "schema": "no_such_schema"}) for spec in super()._specs()]

        async def _apply(self, page):
            await super()._apply(page)
            self.procs = self._workers._procs

    await _replay_fails_and_leaves_the_live_tables(
        own_database, lambda app, pool: WritesNowhere(app, pool, page_size=4), r"(?s)failed.*no_such_schema")
