"""The relay publishes the notification log to Kafka: keyed, complete, never a secret."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from contracts import AccessEventV1
from deploy import embedded
from services.common.kafka import ensure_topics
from services.common.database import eventsourcing_env
from services.invite_service.application import InviteCommand, PortalAccess
from services.common.log_follower import load_position, save_position
from services.invite_service.relay import Relay
from tests.conftest import SECRET_KEY
from tests.helpers import poll_until, unique

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}


@pytest.fixture
def access(migrated):
    app = PortalAccess(eventsourcing_env(migrated), secret_key=SECRET_KEY.encode())
    yield app
    app.close()


async def pro_workspace(access: PortalAccess) -> str:
    ws = unique("ws")
    await access.configure_workspace(ws, {"plan": "pro", "name": "Pride Travelers"}, STAFF)
    return ws


class TopicReader:
    """Reads a topic from the start with a real consumer; keeps everything it saw."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=unique("reader"))
        self.raw: list[tuple[bytes, bytes]] = []
        self.type_headers: list[bytes | None] = []  # the `type` header of each message in `raw`

    async def __aenter__(self):
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc):
        await self.consumer.stop()

    async def read(self) -> list[AccessEventV1]:
        batch = await self.consumer.getmany(timeout_ms=200)
        self.raw += [(m.key, m.value) for msgs in batch.values() for m in msgs]
        self.type_headers += [dict(m.headers).get("type") for msgs in batch.values() for m in msgs]
        return [AccessEventV1.model_validate_json(v) for _, v in self.raw]


async def test_relay_publishes_envelopes_keyed_by_account_in_order(access, pg_pool, kafka_bootstrap, topic_names):
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    ws = await pro_workspace(access)
    invited = [await access.invite(ws, InviteCommand(email=f"c{i}@example.com", name=f"C {i}", role="customer"), STAFF) for i in range(3)]
    first = access.repository.get(invited[0].invitation_id)
    token = access.claim_link("http://x", first).rsplit("/", 1)[1]
    claimed = await access.claim(ws, token)

    relay = Relay(access, pg_pool, kafka_bootstrap, topic_names["access"], relay_name, batch_max=4)
    task = asyncio.create_task(relay.run())
    try:
        async with TopicReader(kafka_bootstrap, topic_names["access"]) as reader:
            async def all_published():
                events = [e for e in await reader.read() if e.workspace == ws]
                return events if len(events) >= 9 else None  # 3 x (account + invite) + claim pair + settings

            events = await poll_until(all_published, what="the workspace's events on the topic")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    by_account = {}
    for key, value in reader.raw:
        envelope = AccessEventV1.model_validate_json(value)
        if envelope.account_id is not None and envelope.workspace == ws:
            assert key == str(envelope.account_id).encode()
            by_account.setdefault(envelope.account_id, []).append(envelope.type)
    assert by_account[claimed.account_id] == ["AccountCreated", "InviteSent", "TokenClaimed", "AccountActivated", "SignedIn"]
    assert all(types == ["AccountCreated", "InviteSent"] for acc, types in by_account.items() if acc != claimed.account_id)
    # Consumers route on the `type` header without parsing the body.
    assert reader.type_headers == [AccessEventV1.model_validate_json(v).type.encode() for _, v in reader.raw]
    sent = next(e for e in events if e.type == "InviteSent" and e.account_id == claimed.account_id)
    assert sent.data["email"] == "c0@example.com" and sent.data["sender"]["sender_name"] == "Pride Travelers"
    assert sent.actor.kind == "staff" and sent.actor.id == "staff-1"
    assert next(e for e in events if e.type == "TokenClaimed").actor.kind == "client"
    # Order holds per account (one key, one partition), not across partitions.
    for account in by_account:
        positions = [e.position for e in events if e.account_id == account]
        assert positions == sorted(positions)
    # Stored only after the broker acknowledged: the position covers what was published.
    assert await load_position(pg_pool, relay_name) >= max(e.position for e in events)

    # No secret anywhere: neither the link token nor its MAC is in Kafka or in the event store.
    mac = token.split(".")[1]
    assert not any(token.encode() in v or mac.encode() in v for _, v in reader.raw)
    stored = await pg_pool.fetch("SELECT state FROM porchlight_events WHERE originator_id = $1", first.id)
    assert stored and not any(mac.encode() in bytes(r["state"]) for r in stored)


async def _invite_many(access: PortalAccess, ws: str, count: int) -> None:
    await asyncio.gather(
        *(access.invite(ws, InviteCommand(email=f"bulk{i}@example.com", name=None, role="customer"), STAFF) for i in range(count))
    )


async def test_killed_relay_resumes_without_losing_events(access, pg_pool, kafka_bootstrap, topic_names, base_env):
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    ws = await pro_workspace(access)
    await _invite_many(access, ws, 600)
    expected = {(r.originator_id, r.originator_version) for r in await asyncio.to_thread(_stored_events_of, access, ws)}
    head = access.recorder.max_notification_id()
    env = {**os.environ, **base_env, "RELAY_NAME": relay_name, "RELAY_BATCH_MAX": "5", "LOG_LEVEL": "WARNING"}

    def start_relay() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "deploy.cli", "relay"], env=env)

    async with TopicReader(kafka_bootstrap, topic_names["access"]) as reader:
        first = start_relay()
        try:
            await poll_until(reader.read, what="the first published events")
        finally:
            first.send_signal(signal.SIGKILL)  # no chance to tidy up
            first.wait()
        stored_at_kill = await load_position(pg_pool, relay_name)
        assert stored_at_kill < head, "the relay finished before it was killed; the test did not test a crash"

        second = start_relay()
        try:
            async def complete():
                seen = {(e.aggregate_id, e.aggregate_version) for e in await reader.read() if e.workspace == ws}
                return seen if expected <= seen else None

            await poll_until(complete, timeout=60, what="every event after the restart")
        finally:
            second.terminate()
            second.wait(10)
    assert await load_position(pg_pool, relay_name) >= head


def _stored_events_of(access: PortalAccess, ws: str):
    records = []
    start = 1
    while True:
        page = access.recorder.select_notifications(start, 1000)
        if not page:
            return records
        records += [n for n in page if ws.encode() in n.state]
        start = page[-1].id + 1


async def test_relay_listens_again_after_its_connection_is_killed(access, migrated, pg_pool, kafka_bootstrap, topic_names, monkeypatch):
    from services.invite_service import relay as relay_module

    # No safety re-reads during the test: after the kill only a NOTIFY can wake the relay in time.
    monkeypatch.setattr(relay_module, "SAFETY_POLL_SECONDS", 600)
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    # Named connections, so the test finds this relay's LISTEN among every other test's.
    pool = await asyncpg.create_pool(migrated, min_size=1, max_size=3, server_settings={"application_name": relay_name})
    task = asyncio.create_task(Relay(access, pool, kafka_bootstrap, topic_names["access"], relay_name).run())

    async def listeners() -> set[int]:
        rows = await pg_pool.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN %'", relay_name
        )
        return {r["pid"] for r in rows}

    try:
        ws = await pro_workspace(access)
        await poll_until(lambda: _published_through(pg_pool, relay_name, access), what="the first events published")
        before = await poll_until(listeners, what="the relay's LISTEN connection")
        await pg_pool.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(before))

        async def listening_again() -> set[int]:
            return (await listeners()) - before

        await poll_until(listening_again, what="a new LISTEN connection")
        assert not task.done(), task.exception()
        await access.invite(ws, InviteCommand(email="after-kill@example.com", name=None, role="customer"), STAFF)
        await poll_until(lambda: _published_through(pg_pool, relay_name, access), timeout=10, what="events after the kill")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()


async def _published_through(pg_pool, relay_name, access) -> bool:
    return await load_position(pg_pool, relay_name) >= (access.recorder.max_notification_id() or 0)


async def test_relay_rides_out_a_broker_outage(access, pg_pool, tmp_path):
    """The broker goes away and comes back on the same address: the relay waits and retries
    instead of exiting, and what was written meanwhile reaches the new broker."""
    port = embedded.free_port()
    broker = embedded.start_tansu(port, log_file=tmp_path / "tansu-1.log")
    topic = unique("test.outage")
    await ensure_topics(broker.bootstrap_servers, [topic])
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    relay = Relay(access, pg_pool, broker.bootstrap_servers, topic, relay_name, publish_timeout_ms=1000)
    task = asyncio.create_task(relay.run())
    try:
        ws = await pro_workspace(access)
        await poll_until(lambda: _published_through(pg_pool, relay_name, access), what="publishing before the outage")

        broker.stop()
        invited = await access.invite(ws, InviteCommand(email="during-outage@example.com", name=None, role="customer"), STAFF)

        async def backing_off() -> bool:
            return relay.stats.failures > 0

        await poll_until(backing_off, what="the relay to notice the outage")
        assert not task.done(), "the relay exited instead of waiting for the broker"
        assert await load_position(pg_pool, relay_name) < invited.position, "nothing may count as published"

        # Memory storage: the new broker starts empty, as after a restart of the embedded one
        # (the relay then re-publishes the whole log: test_broker_reset.py).
        broker = embedded.start_tansu(port, log_file=tmp_path / "tansu-2.log")
        await ensure_topics(broker.bootstrap_servers, [topic])
        await poll_until(lambda: _published_through(pg_pool, relay_name, access), timeout=30, what="publishing after it")
        async with TopicReader(broker.bootstrap_servers, topic) as reader:

            async def the_invite_arrived():
                return [e for e in await reader.read() if e.account_id == invited.account_id]

            arrived = await poll_until(the_invite_arrived, what="the invite written during the outage")
        assert {e.type for e in arrived} >= {"AccountCreated", "InviteSent"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        broker.stop()


async def test_relay_log_lines_read_well(access, pg_pool, kafka_bootstrap, topic_names, caplog):
    """One line per page at DEBUG (INFO gets a periodic summary), in plain English."""
    caplog.set_level(logging.DEBUG, logger="services.invite_service.relay")
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    await pro_workspace(access)  # one event: WorkspaceCreated

    async def published() -> bool:
        return any(r.getMessage().startswith("relay published") for r in caplog.records)

    relay = Relay(access, pg_pool, kafka_bootstrap, topic_names["access"], relay_name, batch_max=1)
    task = asyncio.create_task(relay.run())
    try:
        await poll_until(published, what="a page published")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "services.invite_service.relay"]
    pages = [(level, message) for level, message in lines if message.startswith("relay published")]
    assert pages and all(level == logging.DEBUG for level, _ in pages)
    assert any("published 1 event up to" in message for _, message in pages)
    assert not any("relay relay" in message or " 1 events" in message for _, message in lines)

