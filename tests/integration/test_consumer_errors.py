"""Every consumer's error policy against a real broker and real PostgreSQL servers.

A message the database refuses is dead-lettered and the partition moves on; a transient
failure is retried up to the bound, then dead-lettered; while PostgreSQL is down nothing is
dead-lettered; and stopping a consumer never waits on a backoff nor loses the message it
was holding. The outage tests stop and restart a PostgreSQL server of their own.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY

from contracts import AccessEventV1, dlq
from deploy import embedded
from deploy.embedded import free_port
from deploy.migrate import migrate_database
from projections.main import run as run_projector
from services.common.dead_letters import dead_letter_middleware, stop_consuming
from services.common.kafka import create_producer
from services.common.settings import CommonSettings, ProjectorSettings
from services.notifier.main import run as run_notifier
from tests.helpers import poll_until, unique
from tests.integration.envelopes import AccountStory
from tests.integration.test_notifier import invite_sent, notifier_settings

pytestmark = pytest.mark.timeout(120)

QUICK_RETRIES = {"consumer_retry_delay_seconds": 0.05, "consumer_retry_max_delay_seconds": 0.2}
# A first backoff of 30-60 s (jittered): far longer than any stop may take.
SLOW_RETRIES = {"consumer_retry_delay_seconds": 60.0, "consumer_retry_max_delay_seconds": 60.0}


class OwnPostgres:
    """A PostgreSQL server this test may stop and start; its data survives a restart."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="plpgx-"))
        self.dir.chmod(0o755)
        self.server = embedded.start_postgres(self.dir / "pg")
        self.url = self.server.url

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)

    async def start(self) -> None:
        self.server = await asyncio.to_thread(embedded.start_postgres, self.dir / "pg")
        assert self.server.url == self.url

    async def fetchval(self, query: str, *args):
        conn = await asyncpg.connect(self.url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    pg = OwnPostgres()
    await migrate_database(pg.url)
    yield pg
    await pg.stop()
    shutil.rmtree(pg.dir, ignore_errors=True)


def _projector_settings(base_env: dict[str, str], group: str, **overrides) -> ProjectorSettings:
    fields = {k.lower(): v for k, v in base_env.items() if k.lower() in ProjectorSettings.model_fields}
    return ProjectorSettings(**{**fields, "projector_group_id": group, **overrides})


@asynccontextmanager
async def _running(main) -> AsyncIterator[asyncio.Task]:
    task = asyncio.create_task(main)
    try:
        yield task
    finally:
        if task.done() and not task.cancelled():
            task.result()  # surface a crash rather than a confusing timeout
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _publish(bootstrap: str, topic: str, *messages) -> list:
    """Publish models (keyed as the relay keys them) or (key, value[, headers]); their record metadata."""
    producer = create_producer(bootstrap)
    await producer.start()
    try:
        sent = []
        for m in messages:
            key, value, *headers = m if isinstance(m, tuple) else (m.key, m.model_dump_json().encode())
            sent.append(await producer.send_and_wait(topic, value, key=key, headers=headers[0] if headers else None))
        return sent
    finally:
        await producer.stop()


async def _dead_letters(bootstrap: str, topic: str, count: int) -> list[tuple]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=unique("dlq"))
    await consumer.start()
    found: list[tuple] = []
    try:
        async def enough():
            batch = await consumer.getmany(timeout_ms=200)
            found.extend((r, {k: v.decode() for k, v in r.headers}) for rs in batch.values() for r in rs)
            return len(found) >= count

        await poll_until(enough, what=f"{count} dead letter(s) on {topic}")
        return found
    finally:
        await consumer.stop()


async def _dead_letter_count(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, group: str, topic: str, partition: int) -> int:
    """The group's committed offset (the next to read) on one partition; -1 if none."""
    # Asked without joining the group (no subscribe), so no rebalance of anyone.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        found = await consumer.committed(TopicPartition(topic, partition))
    finally:
        await consumer.stop()
    return found if found is not None else -1


def _retries(consumer: str, category: str) -> float:
    labels = {"consumer": consumer, "category": category}
    return REGISTRY.get_sample_value("porchlight_consumer_retries_total", labels) or 0.0


async def _at_least(consumer: str, category: str, count: float) -> bool:
    return _retries(consumer, category) >= count


async def test_events_that_can_never_be_projected_are_dead_lettered_and_later_ones_projected(
    base_env, pg_pool, topic_names, kafka_bootstrap, monkeypatch
):
    story = AccountStory(unique(), f"{unique('db')}@example.com")
    huge = story.created().model_copy(update={"aggregate_version": 2**40})  # past the int column
    nul = story.created()
    nul = nul.model_copy(update={"data": nul.data.model_copy(update={"email": "dana\x00@example.com", "name": "Dana\x00"})})
    wrong = story.created()
    wrong = AccessEventV1.model_validate(
        {**wrong.model_dump(mode="json"), "data": {**wrong.data.model_dump(mode="json"), "email": {"not": "a string"}}}
    )
    # Fails in FastStream's parser, before any handler or middleware's consume_scope runs.
    mangled = (story.created().key, b"{}", [("type", b"\xff\xfe")])
    good = story.created()  # same account, so the same key and partition, behind the four
    settings = _projector_settings(base_env, unique("projector"))

    async with _running(run_projector(settings)):
        await _publish(kafka_bootstrap, topic_names["access"], huge, nul, wrong, mangled, good)

        async def projected():
            return await pg_pool.fetchrow("SELECT email, status FROM account_status WHERE account_id = $1", story.account_id)

        row = await poll_until(projected, what="the event published after the refused ones")
    assert (row["email"], row["status"]) == (story.email, "pending")

    letters = await _dead_letters(kafka_bootstrap, topic_names["dlq"], 4)
    refused = [m.model_dump_json().encode() for m in (huge, nul, wrong)] + [mangled[1]]
    assert [record.value for record, _ in letters] == refused
    for record, headers in letters:
        assert record.key == good.key
        assert headers[dlq.CONSUMER] == "projector" and headers[dlq.TOPIC] == topic_names["access"]
        assert headers[dlq.CATEGORY] == "unprocessable" and headers[dlq.ATTEMPTS] == "1"
        assert headers[dlq.REASON]
    assert [headers[dlq.REASON].split(":")[0] for _, headers in letters] == [
        # A wrong type inside `data` no longer reaches the database: the typed contract refuses it.
        "DataError", "CharacterNotInRepertoireError", "ValidationError", "UnicodeDecodeError"
    ]
    assert len({headers[dlq.OFFSET] for _, headers in letters}) == 4
    assert len({headers[dlq.PARTITION] for _, headers in letters}) == 1


async def test_a_transient_failure_is_retried_up_to_the_bound_then_dead_lettered(
    pg_pool, kafka_bootstrap, migrated, topic_names
):
    """Each try meets a real serialization failure (a concurrent update under REPEATABLE READ)."""
    table = f"test_counter_{secrets.token_hex(4)}"
    await pg_pool.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, n int NOT NULL); INSERT INTO {table} VALUES (1, 0)")
    settings = CommonSettings(
        database_url=migrated, kafka_bootstrap_servers=kafka_bootstrap, consumer_retry_attempts=3, **QUICK_RETRIES
    )
    broker = KafkaBroker(kafka_bootstrap, logger=logging.getLogger("test.broker"))
    broker.add_middleware(dead_letter_middleware(broker, topic_names["dlq"], consumer="test-serial", settings=settings))
    tries: list[int] = []
    handled: list[dict] = []

    @broker.subscriber(
        topic_names["access"], group_id=unique("serial"), auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR
    )
    async def handle(body: dict) -> None:
        if body["kind"] != "conflict":
            handled.append(body)
            return
        tries.append(1)
        async with pg_pool.acquire() as mine, pg_pool.acquire() as theirs:
            async with mine.transaction(isolation="repeatable_read"):
                await mine.fetchval(f"SELECT n FROM {table} WHERE id = 1")
                await theirs.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1")
                await mine.execute(f"UPDATE {table} SET n = n + 1 WHERE id = 1")  # could not serialize access

    try:
        await broker.start()
        await _publish(kafka_bootstrap, topic_names["access"], (b"k", b'{"kind": "conflict"}'), (b"k", b'{"kind": "after"}'))
        await poll_until(lambda: _now(handled), what="the message behind the failing one")
    finally:
        await stop_consuming(broker)
        await pg_pool.execute(f"DROP TABLE {table}")

    [(record, headers)] = await _dead_letters(kafka_bootstrap, topic_names["dlq"], 1)
    assert record.value == b'{"kind": "conflict"}'
    assert headers[dlq.CATEGORY] == "transient" and headers[dlq.ATTEMPTS] == "3"
    assert headers[dlq.REASON].startswith("SerializationError") and "after 3 attempts" in headers[dlq.REASON]
    assert len(tries) == 3


async def test_a_plain_broker_stop_also_ends_the_backoff_and_the_message_comes_again(
    kafka_bootstrap, migrated, topic_names
):
    """For a process that stops its broker without stop_consuming: slower to notice, still no wait."""
    settings = CommonSettings(database_url=migrated, kafka_bootstrap_servers=kafka_bootstrap, **SLOW_RETRIES)
    group, topic = unique("plain"), topic_names["access"]
    seen: list[dict] = []

    def consumer(fail: bool) -> KafkaBroker:
        broker = KafkaBroker(kafka_bootstrap, logger=logging.getLogger("test.broker"))
        broker.add_middleware(dead_letter_middleware(broker, topic_names["dlq"], consumer="test-plain", settings=settings))

        @broker.subscriber(topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR)
        async def handle(body: dict) -> None:
            seen.append(body)
            if fail:
                raise ConnectionRefusedError(111, "the provider is down")  # an outage: no probe, never counts

        return broker

    failing = consumer(fail=True)
    before = _retries("test-plain", "outage")
    await failing.start()
    try:
        [sent] = await _publish(kafka_bootstrap, topic, (b"k", b'{"n": 1}'))
        await poll_until(lambda: _at_least("test-plain", "outage", before + 1), what="the message to be backing off")
        stopping = asyncio.create_task(failing.stop())
        await poll_until(lambda: _now(stopping.done()), timeout=10, what="the broker to stop")
    finally:
        await failing.stop()
    assert await _committed(kafka_bootstrap, group, topic, sent.partition) <= sent.offset

    working = consumer(fail=False)
    await working.start()
    try:
        await poll_until(lambda: _now(len(seen) == 2), what="the message to come again")
    finally:
        await stop_consuming(working)
    assert seen == [{"n": 1}, {"n": 1}]


async def test_while_postgres_is_down_the_projector_waits_and_dead_letters_nothing(
    own_postgres, base_env, topic_names, kafka_bootstrap
):
    story = AccountStory(unique(), f"{unique('out')}@example.com")
    env = {**base_env, "DATABASE_URL": own_postgres.url}
    settings = _projector_settings(env, unique("projector"), consumer_retry_attempts=2, **QUICK_RETRIES)

    async def status():
        return await own_postgres.fetchval("SELECT status FROM account_status WHERE account_id = $1", story.account_id)

    async with _running(run_projector(settings)):
        await _publish(kafka_bootstrap, topic_names["access"], story.created())
        await poll_until(status, what="the account row")
        await own_postgres.stop()
        before = _retries("projector", "outage")
        await _publish(kafka_bootstrap, topic_names["access"], story.activated())
        # Well past the bound of 2: had the outage counted, the event would be dead-lettered by now.
        await poll_until(lambda: _at_least("projector", "outage", before + 5), what="retries during the outage")
        await own_postgres.start()
        assert await poll_until(lambda: _active(status), what="the event applied after the restart") == "active"

    assert await _dead_letter_count(kafka_bootstrap, topic_names["dlq"]) == 0


async def test_stopping_the_projector_ends_its_backoff_and_leaves_the_message_for_the_next(
    own_postgres, base_env, topic_names, kafka_bootstrap, caplog
):
    caplog.set_level(logging.INFO, logger="services.common.dead_letters")
    story = AccountStory(unique(), f"{unique('stop')}@example.com")
    group = unique("projector")
    env = {**base_env, "DATABASE_URL": own_postgres.url}

    async def status():
        return await own_postgres.fetchval("SELECT status FROM account_status WHERE account_id = $1", story.account_id)

    async with _running(run_projector(_projector_settings(env, group, **SLOW_RETRIES))) as projector:
        await _publish(kafka_bootstrap, topic_names["access"], story.created())
        await poll_until(status, what="the account row")
        await own_postgres.stop()
        before = _retries("projector", "outage")
        [sent] = await _publish(kafka_bootstrap, topic_names["access"], story.activated())
        await poll_until(lambda: _at_least("projector", "outage", before + 1), what="the event to be backing off")

        projector.cancel()  # what `porchlight dev` and SIGTERM do to the process
        # The backoff has 30 s or more to go, FastStream's graceful stop would wait 15 s.
        await poll_until(lambda: _now(projector.done()), timeout=10, what="the projector to stop")
    assert "is left for redelivery" in caplog.text
    assert await _committed(kafka_bootstrap, group, topic_names["access"], sent.partition) <= sent.offset

    await own_postgres.start()
    async with _running(run_projector(_projector_settings(env, group, **QUICK_RETRIES))):
        assert await poll_until(lambda: _active(status), what="the event, redelivered after the restart") == "active"


async def test_an_smtp_outage_is_retried_from_the_ledger_and_the_invite_is_sent_after_the_restart(
    base_env, smtp_server, topic_names, kafka_bootstrap, pg_pool
):
    """The notifier does not hold the partition while its relay is down: the failed send is
    recorded 'retrying' with its next attempt's time and the event acknowledged; the retry
    schedule lives in PostgreSQL, so a restarted notifier sends it when due, once."""
    down = notifier_settings(base_env, free_port(), notifier_retry_base_seconds=2.0)  # nothing listens there
    event = invite_sent(unique("ws"), f"{unique('nb')}@example.com")

    async def status():
        return await pg_pool.fetchval("SELECT status FROM notifier_deliveries WHERE event_id = $1", event.event_id)

    async with _running(run_notifier(down)) as notifier:
        [sent] = await _publish(kafka_bootstrap, topic_names["access"], event)
        await poll_until(lambda: _is(status, "retrying"), what="the failed send recorded for a retry")
        await poll_until(lambda: _committed_past(kafka_bootstrap, down.notifier_group_id, topic_names["access"], sent),
                         what="the event acknowledged")
        notifier.cancel()
        await poll_until(lambda: _now(notifier.done()), timeout=10, what="the notifier to stop")

    up = down.model_copy(update={"smtp_port": smtp_server.port, "notifier_retry_poll_seconds": 0.05})
    async with _running(run_notifier(up)):
        await smtp_server.wait_for(event.data.email)
        await poll_until(lambda: _is(status, "sent"), what="the retry recorded as sent")
    assert len(smtp_server.recorder.to(event.data.email)) == 1


async def _is(probe, expected):
    return await probe() == expected


async def _committed_past(bootstrap, group, topic, sent):
    return await _committed(bootstrap, group, topic, sent.partition) > sent.offset


async def _now(value):
    return value


async def _active(status):
    found = await status()
    return found if found == "active" else None
