"""A broker that comes back empty loses nothing: the relay notices, records it and re-publishes
the log; consumers read again from the beginning; /readyz says so.

Each test that restarts a broker starts its own Tansu on a fixed port and a database of its
own (the relay re-publishes the whole log, which in the shared database is every test's).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from uuid import UUID

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from contracts import AccessEventV1, DeliveryOutcomeV1
from deploy import embedded
from projections.main import run as run_projector
from services.common.broker_resets import latest_reset, record_reset
from services.common.database import create_pool, eventsourcing_env
from services.common.heartbeat import beat
from services.common.kafka import ensure_topics, topic_end_offsets
from services.common.log_follower import load_position, save_position
from services.common.settings import NotifierSettings, ProjectorSettings
from services.invite_service.application import InviteCommand, PortalAccess
from services.invite_service.relay import Relay
from services.notifier.main import run as run_notifier
from tests.conftest import SECRET_KEY
from tests.helpers import poll_until, unique
from tests.integration.databases import own_database  # noqa: F401 - fixture

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}


class RestartableBroker:
    """A Tansu of this test's own, restarted on the same address, empty (memory storage)."""

    def __init__(self, log_dir) -> None:
        self.port = embedded.free_port()
        self.log_dir = log_dir
        self.starts = 0
        self.tansu = self._start()

    def _start(self):
        self.starts += 1
        return embedded.start_tansu(self.port, log_file=self.log_dir / f"tansu-{self.starts}.log")

    @property
    def bootstrap_servers(self) -> str:
        return self.tansu.bootstrap_servers

    def restart(self) -> None:
        self.tansu.stop()
        self.tansu = self._start()


@pytest.fixture
def broker(tmp_path) -> Iterator[RestartableBroker]:
    broker = RestartableBroker(tmp_path)
    yield broker
    broker.tansu.stop()


@pytest.fixture
async def access(own_database) -> AsyncIterator[tuple[PortalAccess, object]]:  # noqa: F811 - the fixture, by name
    app = PortalAccess(eventsourcing_env(own_database), secret_key=SECRET_KEY.encode())
    pool = await create_pool(own_database, max_size=5)
    yield app, pool
    await pool.close()
    app.close()


@pytest.fixture
def topics() -> dict[str, str]:
    return {"access": unique("t.access"), "deliveries": unique("t.deliveries"), "dlq": unique("t.dlq")}


@asynccontextmanager
async def running(coro) -> AsyncIterator[asyncio.Task]:
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        if task.done() and not task.cancelled():
            task.result()  # a crash, rather than a confusing timeout
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def pro_workspace(app: PortalAccess) -> str:
    ws = unique("ws")
    await app.configure_workspace(ws, {"plan": "pro", "name": "Pride Travelers"}, STAFF)
    return ws


async def invite(app: PortalAccess, ws: str, emails: list[str]) -> int:
    """Invites committed through the Application, concurrently (group commit); returns the log's head."""
    await asyncio.gather(*(app.invite(ws, InviteCommand(email=e, name=None, role="customer"), STAFF) for e in emails))
    return app.recorder.max_notification_id()


def stored_events(app: PortalAccess) -> set[tuple[UUID, int]]:
    return {(n.originator_id, n.originator_version) for n in app.recorder.select_notifications(1, 100_000)}


async def read_topic(bootstrap: str, topic: str, model):
    """Everything on `topic` from the start, read by a fresh client without a group."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        found = []
        while batch := await consumer.getmany(timeout_ms=500):
            found += [model.model_validate_json(r.value) for records in batch.values() for r in records]
        return found
    finally:
        await consumer.stop()


def resets_counted() -> float:
    return REGISTRY.get_sample_value("porchlight_broker_resets_total") or 0.0


def rewinds_counted(process: str) -> float:
    return REGISTRY.get_sample_value("porchlight_consumer_rewinds_total", {"process": process}) or 0.0


async def published_through(pool, name: str, position: int) -> bool:
    return await load_position(pool, name) >= position


async def test_relay_republishes_what_a_broker_that_came_back_empty_lost(access, broker, topics):
    app, pool = access
    topic = topics["access"]
    await ensure_topics(broker.bootstrap_servers, [topic])
    relay = Relay(app, pool, broker.bootstrap_servers, topic, "relay", publish_timeout_ms=1000)
    counted = resets_counted()
    async with running(relay.run()):
        ws = await pro_workspace(app)
        head = await invite(app, ws, [f"before{i}@example.com" for i in range(5)])
        await poll_until(lambda: published_through(pool, "relay", head), what="the first invites acknowledged")

        broker.restart()  # nothing on it now, not even the topic
        head = await invite(app, ws, ["after@example.com"])

        async def everything_on_the_new_broker():
            seen = {(e.aggregate_id, e.aggregate_version) for e in await read_topic(broker.bootstrap_servers, topic, AccessEventV1)}
            return seen >= stored_events(app)

        await poll_until(everything_on_the_new_broker, timeout=30, what="every stored event on the new broker")
        reset = await poll_until(lambda: latest_reset(pool, [topic]), what="the reset recorded")
        await poll_until(lambda: published_through(pool, "relay", head), what="the relay caught up")
    assert reset.relay == "relay" and "at or below" in reset.reason
    assert (await latest_reset(pool, [topic])).caught_up
    assert resets_counted() == counted + 1
    assert relay.stats.resets == 1


async def test_relay_notices_an_empty_broker_when_no_event_follows(access, broker, topics):
    """Nothing new to publish, so no ack can tell: the periodic check finds the topic gone,
    creates it again and re-publishes."""
    app, pool = access
    topic = topics["access"]
    await ensure_topics(broker.bootstrap_servers, [topic])
    relay = Relay(app, pool, broker.bootstrap_servers, topic, "relay", publish_timeout_ms=1000, broker_check_seconds=0.2)
    async with running(relay.run()):
        ws = await pro_workspace(app)
        head = await invite(app, ws, [f"quiet{i}@example.com" for i in range(3)])
        await poll_until(lambda: published_through(pool, "relay", head), what="the invites acknowledged")

        broker.restart()
        reset = await poll_until(lambda: latest_reset(pool, [topic]), timeout=30, what="the reset recorded")
        assert reset.reason == "the topic is missing"
        # The reset is recorded first, then the topic created again, as migrate does.
        offsets = await poll_until(lambda: topic_end_offsets(broker.bootstrap_servers, topic), what="the topic again")
        assert len(offsets) == 3

        async def everything_on_the_new_broker():
            seen = {(e.aggregate_id, e.aggregate_version) for e in await read_topic(broker.bootstrap_servers, topic, AccessEventV1)}
            return seen >= stored_events(app)

        await poll_until(everything_on_the_new_broker, timeout=30, what="every stored event on the new broker")


def notifier_settings(database_url: str, bootstrap: str, topics: dict[str, str], smtp_port: int) -> NotifierSettings:
    return NotifierSettings(
        database_url=database_url, kafka_bootstrap_servers=bootstrap, porchlight_secret_key=SECRET_KEY,
        access_topic=topics["access"], deliveries_topic=topics["deliveries"], dlq_topic=topics["dlq"],
        smtp_host="127.0.0.1", smtp_port=smtp_port, notifier_group_id=unique("notifier"),
    )


def projector_settings(database_url: str, bootstrap: str, topics: dict[str, str]) -> ProjectorSettings:
    return ProjectorSettings(
        database_url=database_url, kafka_bootstrap_servers=bootstrap,
        access_topic=topics["access"], deliveries_topic=topics["deliveries"], dlq_topic=topics["dlq"],
        projector_group_id=unique("projector"),
    )


async def test_no_invite_is_lost_when_the_broker_restarts_mid_burst(access, own_database, broker, topics, smtp_server):  # noqa: F811
    """The hardening report's 300 invites, smaller: invites committed while the relay runs, the
    broker restarted empty between them, and every email sent exactly once, every account listed.
    The notifier is down across the restart (behind the relay); the projector runs throughout."""
    app, pool = access
    await ensure_topics(broker.bootstrap_servers, list(topics.values()))
    notifier = notifier_settings(own_database, broker.bootstrap_servers, topics, smtp_server.port)
    relay = Relay(app, pool, broker.bootstrap_servers, topics["access"], "relay", publish_timeout_ms=1000)
    ws = await pro_workspace(app)
    emails = [f"burst{i}@example.com" for i in range(60)]

    async def emailed(addresses):
        return all(smtp_server.recorder.to(a) for a in addresses)

    async with running(relay.run()), running(run_projector(projector_settings(own_database, broker.bootstrap_servers, topics))):
        async with running(run_notifier(notifier)):
            await invite(app, ws, emails[:20])
            await poll_until(lambda: emailed(emails[:20]), timeout=30, what="the first emails")
        head = await invite(app, ws, emails[20:40])  # while the notifier is down
        await poll_until(lambda: published_through(pool, "relay", head), what="the broker to acknowledge them")

        broker.restart()
        async with running(run_notifier(notifier)):
            await invite(app, ws, emails[40:])
            await poll_until(lambda: emailed(emails), timeout=60, what="every invite's email")

            async def listed():
                rows = await pool.fetch("SELECT email FROM account_status WHERE workspace = $1", ws)
                return {r["email"] for r in rows} == set(emails)

            await poll_until(listed, timeout=30, what="every account in the status list")

            # The notifier has handled every re-published invite once it published an outcome for
            # each on the new broker; only then does "exactly once" mean something.
            async def outcome_for_every_invite():
                outcomes = await read_topic(broker.bootstrap_servers, topics["deliveries"], DeliveryOutcomeV1)
                return len({o.event_id for o in outcomes if o.workspace == ws}) == len(emails)

            await poll_until(outcome_for_every_invite, timeout=30, what="an outcome for every invite on the new broker")
    assert {a: len(smtp_server.recorder.to(a)) for a in emails} == {a: 1 for a in emails}


async def test_consumers_read_again_from_the_beginning_after_a_recorded_reset(
    access, own_database, kafka_bootstrap, topics, smtp_server  # noqa: F811
):
    """No broker restart here: the log is still there, so re-reading it shows up as the notifier
    handling each invite again (a repeated outcome, no second email)."""
    app, pool = access
    await ensure_topics(kafka_bootstrap, list(topics.values()))
    ws = await pro_workspace(app)
    emails = [f"again{i}@example.com" for i in range(3)]
    before = {p: rewinds_counted(p) for p in ("notifier", "projector")}

    async def outcomes(count: int):
        found = [o for o in await read_topic(kafka_bootstrap, topics["deliveries"], DeliveryOutcomeV1) if o.workspace == ws]
        return found if len(found) >= count else None

    relay = Relay(app, pool, kafka_bootstrap, topics["access"], "relay")
    async with (
        running(relay.run()),
        running(run_notifier(notifier_settings(own_database, kafka_bootstrap, topics, smtp_server.port))),
        running(run_projector(projector_settings(own_database, kafka_bootstrap, topics))),
    ):
        await invite(app, ws, emails)
        first = await poll_until(lambda: outcomes(3), timeout=30, what="the first outcomes")
        await record_reset(pool, "relay", topics["access"], "recorded by the test", republish_through=0)
        again = await poll_until(lambda: outcomes(6), timeout=30, what="each invite handled again")
        await poll_until(lambda: _rewound(before), what="both consumers counted the rewind")
    assert {o.delivery_id for o in again} == {o.delivery_id for o in first}
    assert all(len(smtp_server.recorder.to(a)) == 1 for a in emails)


async def _rewound(before: dict[str, float]) -> bool:
    return all(rewinds_counted(p) > n for p, n in before.items())


async def test_readyz_says_republishing_until_the_relay_caught_up_and_stays_ready(api, pg_pool, base_env):
    topic = base_env["ACCESS_TOPIC"]
    relay_name = unique("relay")
    instance = unique("test-instance")
    for process in ("relay", "notifier", "projector"):
        await beat(pg_pool, process, instance)
    try:
        body = (await api.get("/readyz")).json()
        assert body["checks"]["broker_reset"] == "none recorded"

        await save_position(pg_pool, relay_name, 40)
        await record_reset(pg_pool, relay_name, topic, "partition 1 ends at offset 0", republish_through=100)
        response = await api.get("/readyz")
        check = response.json()["checks"]["broker_reset"]
        assert check.startswith("republishing since the broker reset at ")
        assert "(partition 1 ends at offset 0)" in check and "position 40 of 100" in check
        assert response.status_code == 200, response.json()  # late email, not a broken system

        await save_position(pg_pool, relay_name, 100)
        check = (await api.get("/readyz")).json()["checks"]["broker_reset"]
        assert check.startswith("caught up after the broker reset at ")
    finally:
        await pg_pool.execute("DELETE FROM process_heartbeats WHERE instance = $1", instance)
