"""The relay: follows the event store's notification log and publishes it to Kafka.

The event store is the outbox. The library's subscription (LISTEN/NOTIFY, then a select
of what is new) runs in a thread and feeds an asyncio queue; the relay takes whatever has
accumulated, publishes it keyed by account id, waits for the broker to acknowledge every
message, and only then stores the new position. A crash re-publishes from the last
stored position: duplicates, never gaps (consumers dedupe on `event_id`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import asyncpg
from eventsourcing.persistence import Notification

from services.common.kafka import create_producer
from services.common.metrics import RELAY_POSITION, RELAY_PUBLISHED
from services.invite_service.application import PortalAccess
from services.invite_service.envelopes import Origins, to_envelope

log = logging.getLogger(__name__)


@dataclass
class RelayStats:
    published: int = 0
    position: int = 0


async def load_position(pool: asyncpg.Pool, relay: str) -> int:
    return await pool.fetchval("SELECT position FROM relay_positions WHERE relay = $1", relay) or 0


async def save_position(pool: asyncpg.Pool, relay: str, position: int) -> None:
    await pool.execute(
        "INSERT INTO relay_positions (relay, position) VALUES ($1, $2) "
        "ON CONFLICT (relay) DO UPDATE SET position = GREATEST(relay_positions.position, EXCLUDED.position), "
        "updated_at = now()",
        relay,
        position,
    )


class Relay:
    def __init__(
        self, app: PortalAccess, pool: asyncpg.Pool, bootstrap_servers: str, topic: str, name: str, batch_max: int = 500
    ) -> None:
        self._app = app
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._name = name
        self._batch_max = batch_max
        self._origins = Origins(self._first_event)
        self.stats = RelayStats()

    def _first_event(self, aggregate_id):
        stored = self._app.recorder.select_events(aggregate_id, lte=1, limit=1)
        return self._app.mapper.to_domain_event(stored[0])

    async def run(self) -> None:
        position = await load_position(self._pool, self._name)
        self.stats.position = position
        log.info("relay %s starting after position %s, publishing to %s", self._name, position, self._topic)
        queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=self._batch_max * 4)
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        follower = threading.Thread(target=self._follow, args=(position, queue, loop, stop), name="relay-follow", daemon=True)
        producer = create_producer(self._bootstrap_servers)
        await producer.start()
        follower.start()
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < self._batch_max and not queue.empty():
                    batch.append(queue.get_nowait())
                await self._publish(producer, batch)
        finally:
            stop.set()
            await producer.stop()

    def _follow(self, after: int, queue: asyncio.Queue, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        """Thread: blocks on the library's LISTEN/NOTIFY subscription, hands notifications to the loop."""
        subscription = self._app.recorder.subscribe(gt=after)
        with subscription:
            # The subscription blocks in next(); a watcher stops it when the relay stops.
            threading.Thread(target=lambda: (stop.wait(), subscription.stop()), daemon=True).start()
            for notification in subscription:
                if stop.is_set() or loop.is_closed():
                    return
                try:
                    asyncio.run_coroutine_threadsafe(queue.put(notification), loop).result()
                except (RuntimeError, asyncio.CancelledError):
                    return  # the loop is shutting down

    async def _publish(self, producer, batch: list[Notification]) -> None:
        started = time.perf_counter()
        envelopes = await asyncio.to_thread(self._envelopes, batch)
        acks = [
            await producer.send(self._topic, envelope.model_dump_json().encode(), key=envelope.key)
            for envelope in envelopes
        ]
        await asyncio.gather(*acks)  # every message acknowledged (acks=all) before moving on
        position = batch[-1].id
        await save_position(self._pool, self._name, position)
        self.stats.published += len(batch)
        self.stats.position = position
        RELAY_PUBLISHED.inc(len(batch))
        RELAY_POSITION.set(position)
        log.info(
            "relay published %d events up to position %d in %.1f ms",
            len(batch),
            position,
            (time.perf_counter() - started) * 1000,
        )

    def _envelopes(self, batch: list[Notification]):
        out = []
        for notification in batch:
            event = self._app.mapper.to_domain_event(notification)
            out.append(to_envelope(event, notification.id, self._origins.of(event)))
        return out


async def run(settings, from_beginning: bool = False) -> None:
    """Composition root of `porchlight relay`: runs until cancelled.

    `from_beginning` re-publishes the whole log, for a broker that lost its topics (the
    embedded memory broker after a restart): consumers skip what they already handled.
    """
    from services.common.database import create_pool, eventsourcing_env
    from services.common.heartbeat import run_heartbeat

    app = await asyncio.to_thread(PortalAccess, eventsourcing_env(settings.database_url))
    pool = await create_pool(settings.database_url, max_size=3)
    if from_beginning:
        await pool.execute("DELETE FROM relay_positions WHERE relay = $1", settings.relay_name)
        log.info("relay %s will re-publish the notification log from the start", settings.relay_name)
    relay = Relay(app, pool, settings.kafka_bootstrap_servers, settings.access_topic, settings.relay_name, settings.relay_batch_max)
    heartbeat = asyncio.create_task(run_heartbeat(pool, "relay"))
    try:
        await relay.run()
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        await pool.close()
        app.close()
