"""The projector process in-process: real broker in, real PostgreSQL out."""

from __future__ import annotations

import asyncio
import json

import pytest

from projections.main import run
from services.common.heartbeat import live_processes
from services.common.kafka import create_producer
from services.common.settings import ProjectorSettings
from tests.helpers import dead_letters, poll_until, unique, wait_for_dead_letter
from tests.integration.envelopes import AccountStory


@pytest.fixture
async def projector(base_env, monkeypatch):
    for name, value in base_env.items():
        monkeypatch.setenv(name, value)
    # A group per test: the topics are per test too, and no other test's offsets apply.
    settings = ProjectorSettings(projector_group_id=unique("projector"))
    task = asyncio.create_task(run(settings))
    yield settings
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _publish(bootstrap: str, topic: str, *messages, type_header: bool = True) -> None:
    """Publish as the relay does: the body, keyed by account, with the `type` header (unless told not to,
    as an older producer would)."""
    producer = create_producer(bootstrap)
    await producer.start()
    try:
        for message in messages:
            if isinstance(message, tuple):  # (key, raw body, headers): what no model would write
                key, value, headers = message
            else:
                key, value = message.key, message.model_dump_json().encode()
                headers = getattr(message, "headers", []) if type_header else []
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _applied(pool, event) -> bool:
    return await pool.fetchval(
        "SELECT true FROM projection_applied WHERE projection = 'status_list' AND aggregate_id = $1 AND version = $2",
        event.aggregate_id,
        event.aggregate_version,
    )


async def test_published_events_make_the_account_active_once(projector, pg_pool, topic_names, kafka_bootstrap):
    story = AccountStory(unique(), f"{unique('pat')}@example.com")
    created, sent, activated = story.created(), story.invite_sent(), story.activated()
    await _publish(kafka_bootstrap, topic_names["access"], created, sent, activated)

    async def active():
        return await pg_pool.fetchrow(
            "SELECT * FROM account_status WHERE account_id = $1 AND status = 'active'", story.account_id
        )

    row = await poll_until(active, what="the account to be active")
    assert row["activated_at"] == activated.occurred_at

    async def beating():
        return "projector" in await live_processes(pg_pool)

    await poll_until(beating, what="the projector's heartbeat")

    # The relay re-publishes after a crash (here an older relay, without the type header);
    # then a later event shows the duplicates were consumed.
    marker = story.other("SomethingInvented")
    await _publish(kafka_bootstrap, topic_names["access"], created, sent, activated, marker, type_header=False)

    await poll_until(lambda: _applied(pg_pool, marker), what="the event after the duplicates")
    assert await active() == row


async def test_delivery_outcomes_are_projected(projector, pg_pool, topic_names, kafka_bootstrap):
    story = AccountStory(unique(), f"{unique('lee')}@example.com")
    await _publish(kafka_bootstrap, topic_names["access"], story.created(), story.invite_sent())
    outcome = story.delivery("failed")
    await _publish(kafka_bootstrap, topic_names["deliveries"], outcome, outcome)

    async def shown():
        return await pg_pool.fetchval(
            "SELECT last_delivery_status FROM account_status WHERE account_id = $1", story.account_id
        )

    assert await poll_until(shown, what="the delivery status") == "failed"
    count = await pg_pool.fetchval(
        "SELECT count(*) FROM account_deliveries WHERE delivery_id = $1", outcome.delivery_id
    )
    assert count == 1


async def test_a_malformed_message_is_dead_lettered_and_the_partition_moves_on(
    projector, pg_pool, topic_names, kafka_bootstrap
):
    story = AccountStory(unique(), f"{unique('mo')}@example.com")
    created = story.created()
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    try:
        # Same key, so the good event sits behind the bad one on one partition.
        await producer.send_and_wait(topic_names["access"], b'{"not": "an envelope"}', key=created.key)
    finally:
        await producer.stop()
    await _publish(kafka_bootstrap, topic_names["access"], created)

    async def row():
        return await pg_pool.fetchrow("SELECT status FROM account_status WHERE account_id = $1", story.account_id)

    assert (await poll_until(row, what="the event behind the malformed one"))["status"] == "pending"

    record, headers = await wait_for_dead_letter(kafka_bootstrap, topic_names["dlq"])
    assert headers["dlq-topic"] == topic_names["access"]
    assert record.value == b'{"not": "an envelope"}' and record.key == created.key
    assert headers["dlq-consumer"] == "projector" and "ValidationError" in headers["dlq-reason"]


async def test_a_known_type_with_a_malformed_payload_is_dead_lettered_and_unknown_ones_pass(
    projector, pg_pool, topic_names, kafka_bootstrap
):
    story = AccountStory(unique(), f"{unique('mal')}@example.com")
    created = story.created()
    # A known type whose payload breaks its contract: `resources` must be a list of resources.
    broken = created.model_dump(mode="json")
    broken["data"]["resources"] = "trip-1"
    broken_value = json.dumps(broken).encode()
    # A type added after this projector was built, from an Actor with a field it does not know.
    future = story.other("SomethingInvented", {"colour": "teal"}).model_dump(mode="json")
    future["actor"]["team"] = "night shift"
    marker = story.other("AlsoInvented")

    # One key, so one partition, in this order: the good events sit behind the bad one.
    await _publish(
        kafka_bootstrap,
        topic_names["access"],
        (created.key, broken_value, created.headers),
        (created.key, json.dumps(future).encode(), []),  # no header: routed by the body's type
        created,
        marker,
    )

    async def row():
        return await pg_pool.fetchrow("SELECT status, resources FROM account_status WHERE account_id = $1",
                                      story.account_id)

    await poll_until(lambda: _applied(pg_pool, marker), what="the events behind the malformed one")
    assert (await row())["status"] == "pending"
    assert json.loads((await row())["resources"]) == [{"type": "trip", "id": "trip-1"}]
    assert await pg_pool.fetchval(
        "SELECT true FROM projection_applied WHERE projection = 'status_list' AND aggregate_id = $1 AND version = $2",
        story.account_id, future["aggregate_version"],
    )

    [(key, value, headers)] = await dead_letters(kafka_bootstrap, topic_names["dlq"])
    assert (key, value) == (created.key, broken_value)
    assert headers["dlq-consumer"] == "projector" and "resources" in headers["dlq-reason"]


async def test_a_malformed_delivery_outcome_is_dead_lettered_and_the_batch_goes_on(
    projector, pg_pool, topic_names, kafka_bootstrap
):
    # Delivery outcomes are applied a fetched batch per transaction: the one that cannot
    # validate fails the batch, which is applied again one by one, parking only that one.
    story = AccountStory(unique(), f"{unique('dlv')}@example.com")
    await _publish(kafka_bootstrap, topic_names["access"], story.created(), story.invite_sent())
    outcome = story.delivery("sent")
    broken = outcome.model_dump(mode="json")
    broken["attempt"] = "first"
    await _publish(kafka_bootstrap, topic_names["deliveries"],
                   (outcome.key, json.dumps(broken).encode(), []), outcome)

    async def shown():
        return await pg_pool.fetchval(
            "SELECT last_delivery_status FROM account_status WHERE account_id = $1", story.account_id
        )

    assert await poll_until(shown, what="the outcome behind the malformed one") == "sent"
    record, headers = await wait_for_dead_letter(kafka_bootstrap, topic_names["dlq"])
    assert headers["dlq-topic"] == topic_names["deliveries"] and json.loads(record.value)["attempt"] == "first"
