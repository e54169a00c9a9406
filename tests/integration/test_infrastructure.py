"""The test infrastructure itself is real: a PostgreSQL server and a Kafka-protocol broker."""

from aiokafka import AIOKafkaConsumer

from services.common.heartbeat import beat, live_processes
from services.common.kafka import create_producer
from tests.helpers import unique


async def test_postgres_is_a_real_server_with_our_schema(pg_pool):
    version = await pg_pool.fetchval("SHOW server_version_num")
    assert int(version) >= 150000
    tables = {r["tablename"] for r in await pg_pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"porchlight_events", "relay_positions", "portal_sessions", "process_heartbeats"} <= tables


async def test_heartbeats_mark_a_process_live(pg_pool):
    name = unique("proc")
    assert name not in await live_processes(pg_pool)
    await beat(pg_pool, name, "i1")
    assert name in await live_processes(pg_pool)


async def test_broker_round_trips_a_keyed_message(kafka_bootstrap, topic_names):
    topic = topic_names["access"]
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"account-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=unique("g"))
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        values = [(m.key, m.value) for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    assert values == [(b"account-1", b"hello")]
