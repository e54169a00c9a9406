"""The projector's CPU per applied event, one transaction per event and one per fetched batch.

    .venv/bin/python -m bench.projector_cpu [--events 30000]

Publishes N prepared access-event envelopes (accounts created, invited and activated: three
events each) to a fresh topic, then runs the projector in this process, consuming it from
the start, and measures this process's CPU time (time.process_time) until all N are
applied. Run once with PROJECTOR_BATCH_MAX=1 (before batching) and once with the default
(after), each on its own topic and events. Baseline in the same run: a bare aiokafka
consumer reading the same N messages (CPU time of the consume alone). PostgreSQL and the
broker run in other processes and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer

from bench.infra import broker, database
from contracts.access import AccessEventV1, event_id_for, parse_access_event
from deploy.migrate import migrate_database
from projections.consumer import create_projector
from projections.projector import ProjectorStats
from services.common.database import create_pool
from services.common.dead_letters import stop_consuming
from services.common.kafka import create_producer, ensure_topics
from services.common.runtime import tune_gc_after_start
from services.common.settings import ProjectorSettings


def _envelope(ws, account_id, type_, aggregate_id, version, position, at, data) -> AccessEventV1:
    return parse_access_event({
        "event_id": str(event_id_for(aggregate_id, version)), "type": type_, "workspace": ws,
        "account_id": str(account_id), "aggregate_id": str(aggregate_id), "aggregate_version": version,
        "position": position, "occurred_at": at.isoformat(), "actor": {"kind": "staff", "id": "bench"}, "data": data,
    })


def prepare(count: int) -> list[AccessEventV1]:
    ws, now, events = f"bench-{secrets.token_hex(3)}", datetime.now(UTC), []
    position = 10**12 + secrets.randbelow(10**9) * 100_000  # never a real event-store position
    for i in range(count // 3):
        account_id, invitation_id, email = uuid.uuid4(), uuid.uuid4(), f"p{i}@example.com"
        at = now - timedelta(seconds=i)
        created = {"workspace": ws, "email": email, "name": f"P {i}", "role": "customer", "company": "Acme",
                   "resources": [{"type": "trip", "id": f"T-{i}"}], "invitation_id": str(invitation_id)}
        sent = {"workspace": ws, "account_id": str(account_id), "email": email, "name": f"P {i}", "nonce": "n" * 22,
                "expires_at": (at + timedelta(days=7)).isoformat(),
                "sender": {"workspace_name": "Acme", "sender_name": "Acme"}}
        events += [
            _envelope(ws, account_id, "AccountCreated", account_id, 1, position + 1, at, created),
            _envelope(ws, account_id, "InviteSent", invitation_id, 1, position + 2, at, sent),
            _envelope(ws, account_id, "AccountActivated", account_id, 2, position + 3, at + timedelta(hours=1),
                      {"invitation_id": str(invitation_id)}),
        ]
        position += 3
    return events


async def publish(bootstrap: str, topic: str, events: list[AccessEventV1]) -> None:
    producer = create_producer(bootstrap)
    await producer.start()
    try:
        for i in range(0, len(events), 1000):
            await asyncio.gather(*[
                await producer.send(topic, e.model_dump_json().encode(), key=e.key, headers=e.headers)
                for e in events[i:i + 1000]
            ])
    finally:
        await producer.stop()


async def bare_consume(bootstrap: str, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=f"bench-bare-{secrets.token_hex(3)}", enable_auto_commit=False)
    await consumer.start()
    try:
        seen, cpu0 = 0, time.process_time()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            seen += sum(len(records) for records in batch.values())
        return time.process_time() - cpu0
    finally:
        await consumer.stop()


async def project(url: str, bootstrap: str, topic: str, count: int, batch_max: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for the projector to apply `count` events from `topic`."""
    settings = ProjectorSettings(
        database_url=url, kafka_bootstrap_servers=bootstrap, access_topic=topic,
        projector_group_id=f"bench-projector-{secrets.token_hex(3)}", projector_batch_max=batch_max,
    )
    pool = await create_pool(url, max_size=4)
    stats = ProjectorStats()
    brokers = create_projector(settings, pool, stats)
    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(b.start() for b in brokers))
        if os.environ.get("BENCH_GC", "tuned") == "tuned":
            tune_gc_after_start()  # as projections/main.py does once the brokers are started
        while stats.applied + stats.duplicates < count:
            await asyncio.sleep(0.05)
        return time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await stop_consuming(*brokers)
        await pool.close()


async def main(count: int) -> None:
    count -= count % 3
    with database() as url, broker() as bootstrap:
        await migrate_database(url)
        runs = {"one transaction per event (PROJECTOR_BATCH_MAX=1)": 1, "one per fetched batch (default 500)": 500}
        topics = {name: f"bench.access.{secrets.token_hex(3)}" for name in runs}
        await ensure_topics(bootstrap, list(topics.values()))
        for name in runs:
            await publish(bootstrap, topics[name], prepare(count))
        bare = await bare_consume(bootstrap, topics[next(iter(runs))], count)
        print(f"{count:,} events; CPU of this process only (PostgreSQL and the broker are other processes)\n")
        print(f"{'':52} {'CPU µs/event':>12} {'events/s':>10}")
        print(f"{'baseline: bare aiokafka consume of the same messages':52} {bare / count * 1e6:12.0f} {'':>10}")
        for name, batch_max in runs.items():
            cpu, wall = await project(url, bootstrap, topics[name], count, batch_max)
            print(f"{name:52} {cpu / count * 1e6:12.0f} {count / wall:10,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000)
    asyncio.run(main(parser.parse_args().events))
