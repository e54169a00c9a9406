"""How fast the relay moves the notification log to Kafka, next to its two halves alone.

    .venv/bin/python -m bench.relay_throughput [--invites 10000]

Baselines from the same run: reading the notification log with the library's
`select_notifications` (no Kafka), and producing same-sized messages with aiokafka
(acks=all, no database). The relay's rate is events published and acknowledged per
second, from its start to the last position stored.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

from bench.infra import broker, database
from deploy.migrate import migrate
from services.common.database import create_pool, eventsourcing_env
from services.common.kafka import create_producer, ensure_topics
from services.invite_service.application import InviteCommand, PortalAccess
from services.common.log_follower import load_position, save_position
from services.invite_service.relay import Relay

STAFF = {"kind": "staff", "id": "bench", "reason": None}


async def seed(access: PortalAccess, invites: int) -> tuple[int, int]:
    start = access.recorder.max_notification_id() or 0
    ws = f"bench-{secrets.token_hex(3)}"
    await access.configure_workspace(ws, {"plan": "pro"}, STAFF)
    for offset in range(0, invites, 500):  # commands are coroutines; 500 at a time group-commit together
        await asyncio.gather(*(access.invite(ws, InviteCommand(email=f"r{i}@example.com", name="R", role="customer"), STAFF)
                               for i in range(offset, min(invites, offset + 500))))
    return start, access.recorder.max_notification_id()


def read_rate(access: PortalAccess, start: int, end: int) -> float:
    t0, position, count = time.perf_counter(), start, 0
    while position < end:
        page = access.recorder.select_notifications(position + 1, 500)
        count += len(page)
        position = page[-1].id
    return count / (time.perf_counter() - t0)


async def produce_rate(bootstrap: str, count: int, size: int) -> float:
    topic = f"bench.produce.{secrets.token_hex(3)}"
    await ensure_topics(bootstrap, [topic])
    producer = create_producer(bootstrap)
    await producer.start()
    payload = b"x" * size
    try:
        t0 = time.perf_counter()
        for offset in range(0, count, 500):
            acks = [await producer.send(topic, payload, key=str(i % 97).encode()) for i in range(offset, min(count, offset + 500))]
            await asyncio.gather(*acks)
        return count / (time.perf_counter() - t0)
    finally:
        await producer.stop()


async def relay_rate(url: str, bootstrap: str, access: PortalAccess, start: int, end: int) -> float:
    topic = f"bench.relay.{secrets.token_hex(3)}"
    await ensure_topics(bootstrap, [topic])
    pool = await create_pool(url, max_size=3)
    name = f"bench-{secrets.token_hex(3)}"
    await save_position(pool, name, start)
    relay = Relay(access, pool, bootstrap, topic, name)
    t0 = time.perf_counter()
    task = asyncio.create_task(relay.run())
    while await load_position(pool, name) < end:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await pool.close()
    return (end - start) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invites", type=int, default=10_000)
    args = parser.parse_args()
    with database() as url, broker() as bootstrap:
        asyncio.run(migrate(url, bootstrap))
        access = PortalAccess(eventsourcing_env(url), secret_key=b"b" * 32)
        start, end = asyncio.run(seed(access, args.invites))
        events = end - start
        size = len(access.recorder.select_notifications(start + 1, 1)[0].state) + 300
        reading = read_rate(access, start, end)
        producing = asyncio.run(produce_rate(bootstrap, events, size))
        relaying = asyncio.run(relay_rate(url, bootstrap, access, start, end))
        access.close()
    print(f"\n{events:,} events ({args.invites:,} invites), messages ~{size} bytes")
    print(f"{'measurement':<44}{'events/s':>10}")
    print(f"{'baseline: read the notification log':<44}{reading:>10,.0f}")
    print(f"{'baseline: produce to Kafka (acks=all)':<44}{producing:>10,.0f}")
    print(f"{'relay: read, map, publish, ack, store':<44}{relaying:>10,.0f}")
    print(f"relay / slower baseline: {relaying / min(reading, producing):.2f}")


if __name__ == "__main__":
    main()
