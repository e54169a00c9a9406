"""The audit chain over the event store, and `porchlight audit verify` finding each kind of tampering.

A database of its own per test: verify reads the whole log, and the chain starts at its first event.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from typer.testing import CliRunner

from deploy.cli import app as cli
from services.common.audit_chain import FOLLOWER_NAME, AuditChain
from services.common.database import create_pool, eventsourcing_env
from services.common.kafka import ensure_topics
from services.common.log_follower import set_position
from services.invite_service.application import InviteCommand, PortalAccess
from services.invite_service.relay import run as run_relay
from services.common.settings import RelaySettings
from tests.conftest import SECRET_KEY
from tests.helpers import poll_until, unique
from tests.integration.databases import own_database  # noqa: F401 - fixture

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}


@pytest.fixture
async def chained(own_database, kafka_bootstrap):  # noqa: F811 - the fixture, by name
    """A log of a workspace and eight invites, chained, its head published to a topic of this test's."""
    topic = unique("t.audit")
    await ensure_topics(kafka_bootstrap, [topic])
    app = PortalAccess(eventsourcing_env(own_database), secret_key=SECRET_KEY.encode())
    pool = await create_pool(own_database, max_size=3)
    ws = unique("ws")
    await app.configure_workspace(ws, {"plan": "pro", "name": "Pride Travelers"}, STAFF)
    await asyncio.gather(*(app.invite(ws, InviteCommand(email=f"c{i}@example.com", name=f"C {i}", role="customer"),
                                      STAFF) for i in range(8)))
    chain = AuditChain(app.recorder, pool, kafka_bootstrap, topic)
    assert await chain.follower.catch_up(chain.chain_page) == app.recorder.max_notification_id() == 17
    assert (await chain.publish_head()).position == 17
    await chain.close()
    try:
        yield app, pool, chain, {"DATABASE_URL": own_database, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                                 "AUDIT_TOPIC": topic}
    finally:
        await pool.close()
        app.close()


async def verify(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`porchlight audit verify` as an operator runs it (in a thread: it runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "verify", *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


async def test_an_intact_log_verifies(chained):
    _, _, _, env = chained
    code, output = await verify(env)
    assert code == 0, output
    assert "intact: 17 events chained up to position 17, 1 published heads matched" in output


async def test_altered_event_bytes_are_reported_at_their_position(chained):
    _, pool, _, env = chained
    await pool.execute("UPDATE porchlight_events SET state = state || '\\x20'::bytea WHERE notification_id = 6")
    code, output = await verify(env)
    assert code == 1
    assert "ALTERED at position 6:" in output and "stored state" in output


async def test_a_deleted_event_is_reported_missing(chained):
    _, pool, _, env = chained
    await pool.execute("DELETE FROM porchlight_events WHERE notification_id = 9")
    code, output = await verify(env)
    assert code == 1
    assert "MISSING at position 9:" in output


async def test_two_swapped_events_are_reported_reordered_at_the_first(chained):
    _, pool, _, env = chained
    await pool.execute(
        "UPDATE porchlight_events e SET state = o.state FROM porchlight_events o "
        "WHERE (e.notification_id, o.notification_id) IN ((4, 11), (11, 4))"
    )
    code, output = await verify(env)
    assert code == 1
    assert "REORDERED at position 4: the event at position 4 holds the stored state chained at position 11" in output


async def test_rewriting_events_and_chain_together_is_caught_by_the_published_heads(chained):
    app, pool, _, env = chained
    await pool.execute("UPDATE porchlight_events SET state = state || '\\x20'::bytea WHERE notification_id = 12")
    # The attacker rebuilds the chain table over the altered log, but cannot publish a head.
    await pool.execute("DELETE FROM audit_chain")
    await set_position(pool, FOLLOWER_NAME, 0)
    rebuilt = AuditChain(app.recorder, pool, env["KAFKA_BOOTSTRAP_SERVERS"], "unused")
    await rebuilt.follower.catch_up(rebuilt.chain_page)

    code, output = await verify(env, "--no-heads")
    assert code == 0, "the database alone agrees with itself"
    code, output = await verify(env)
    assert code == 1
    assert "REWRITTEN at position 17:" in output and "an event after position 0 up to 17 was changed" in output


async def test_the_relay_process_chains_the_log_and_publishes_its_head(own_database, kafka_bootstrap):  # noqa: F811
    """Not the request path: the relay process's second follower chains new events as they commit."""
    topics = {"access": unique("t.access"), "audit": unique("t.audit")}
    await ensure_topics(kafka_bootstrap, list(topics.values()))
    settings = RelaySettings(database_url=own_database, kafka_bootstrap_servers=kafka_bootstrap,
                             access_topic=topics["access"], audit_topic=topics["audit"], audit_head_seconds=0.2)
    app = PortalAccess(eventsourcing_env(own_database), secret_key=SECRET_KEY.encode())
    pool = await create_pool(own_database, max_size=2)
    relay = asyncio.create_task(run_relay(settings))
    env = {"DATABASE_URL": own_database, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "AUDIT_TOPIC": topics["audit"]}
    try:
        ws = unique("ws")
        await app.configure_workspace(ws, {"plan": "pro"}, STAFF)
        await app.invite(ws, InviteCommand(email="a@example.com", name=None, role="customer"), STAFF)
        head = app.recorder.max_notification_id()
        await poll_until(lambda: pool.fetchval("SELECT max(position) = $1 FROM audit_chain", head),
                         what="the chain to reach the log's head")

        async def head_published():
            code, output = await verify(env)
            matched = re.search(r"(\d+) published heads matched", output)
            return output if code == 0 and matched and int(matched[1]) >= 1 else None

        output = await poll_until(head_published, what="a published head that verify matches")
        assert f"intact: {head} events chained up to position {head}" in output
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await pool.close()
        app.close()


async def test_cutting_the_end_of_the_log_and_its_links_is_caught_by_the_published_head(chained):
    _, pool, _, env = chained
    await pool.execute("DELETE FROM porchlight_events WHERE notification_id >= 16")
    await pool.execute("DELETE FROM audit_chain WHERE position >= 16")

    code, output = await verify(env, "--no-heads")
    assert code == 0, "the database alone agrees with itself"
    code, output = await verify(env)
    assert code == 1
    assert "MISSING at position 17:" in output and "beyond the end of the log (15)" in output
