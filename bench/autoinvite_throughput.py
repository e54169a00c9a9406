"""How many share events/s the auto-invite consumer handles, next to the broker's raw consume rate.

    .venv/bin/python -m bench.autoinvite_throughput [--trips 2000]

Publishes, per trip, a first share (two travelers, the primary invited: a trip, an account
and an invitation in one transaction) and a second share (recorded on the trip only), to
one topic. Baseline from the same run: a bare aiokafka consumer reading the same messages
without a group (no parsing, no database). The consumer's rate is counted from its first
handled share to its last, so its group join (which Tansu holds back a few seconds) is left out.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.infra import broker, database
from contracts.shares import Traveler, TripShareV1
from deploy.migrate import migrate
from services.autoinvite.consumer import AutoinviteStats
from services.autoinvite.main import run
from services.common.database import eventsourcing_env
from services.common.kafka import create_producer, ensure_topics
from services.common.settings import AutoinviteSettings
from services.invite_service.application import PortalAccess

STAFF = {"kind": "staff", "id": "bench", "reason": None}


def shares(ws: str, trips: int) -> list[TripShareV1]:
    now = datetime.now(UTC)
    out = []
    for kind in ("invoice", "proposal"):  # every first share, then every second one
        for i in range(trips):
            out.append(TripShareV1(
                event_id=uuid.uuid4(), workspace=ws, trip_id=f"T-{i}", kind=kind, shared_by="agent", occurred_at=now,
                travelers=[Traveler(name="Ana", email=f"ana{i}@example.com", primary=True),
                           Traveler(name="Ben", email=f"ben{i}@example.com")],
            ))
    return out


async def publish(bootstrap: str, topic: str, messages: list[TripShareV1]) -> None:
    producer = create_producer(bootstrap)
    await producer.start()
    try:
        for offset in range(0, len(messages), 500):
            acks = [await producer.send(topic, m.model_dump_json().encode(), key=m.key)
                    for m in messages[offset:offset + 500]]
            await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def raw_consume_rate(bootstrap: str, topic: str, count: int) -> float:
    """A bare consumer without a group (no join to wait for), reading every partition from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, t0 = 0, time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            seen += sum(len(records) for records in batch.values())
        return count / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def consumer_rate(url: str, bootstrap: str, topic: str, count: int, batch_max: int) -> tuple[float, dict]:
    stats = AutoinviteStats()
    settings = AutoinviteSettings(
        database_url=url, kafka_bootstrap_servers=bootstrap, trip_shares_topic=topic,
        autoinvite_group_id=f"bench-{secrets.token_hex(3)}", autoinvite_batch_max=batch_max,
        dlq_topic=f"bench.dlq.{secrets.token_hex(3)}",
    )
    task = asyncio.create_task(run(settings, stats))
    try:
        while stats.handled == 0:
            await asyncio.sleep(0.002)
        t0, first = time.perf_counter(), stats.handled
        while stats.handled < count:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        return (count - first) / (time.perf_counter() - t0), vars(stats).copy()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trips", type=int, default=2000)
    parser.add_argument("--batch-max", type=int, default=200, help="AUTOINVITE_BATCH_MAX")
    args = parser.parse_args()
    with database() as url, broker() as bootstrap:
        asyncio.run(migrate(url, bootstrap))
        access = PortalAccess(eventsourcing_env(url))
        ws = f"bench-{secrets.token_hex(3)}"
        asyncio.run(access.configure_workspace(
            ws, {"plan": "pro", "portal_enabled": True, "auto_invite_on_first_share": True}, STAFF))
        access.close()
        topic = f"bench.shares.{secrets.token_hex(3)}"
        asyncio.run(ensure_topics(bootstrap, [topic]))
        messages = shares(ws, args.trips)
        asyncio.run(publish(bootstrap, topic, messages))
        raw = asyncio.run(raw_consume_rate(bootstrap, topic, len(messages)))
        handled, outcomes = asyncio.run(consumer_rate(url, bootstrap, topic, len(messages), args.batch_max))
    size = len(messages[0].model_dump_json())
    print(f"\n{len(messages):,} share events ({args.trips:,} trips x 2), ~{size} bytes, batches of up to {args.batch_max}")
    print(f"outcomes: {outcomes}")
    print(f"{'measurement':<52}{'events/s':>10}")
    print(f"{'baseline: raw aiokafka consume of the same messages':<52}{raw:>10,.0f}")
    print(f"{'autoinvite: parse, decide, store (invite or record)':<52}{handled:>10,.0f}")
    print(f"autoinvite / raw consume: {handled / raw:.3f}")


if __name__ == "__main__":
    main()
