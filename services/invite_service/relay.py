"""The relay: follows the event store's notification log and publishes it to Kafka.

The event store is the outbox. The relay LISTENs on the channel the library NOTIFYs in
every insert transaction and reads what is new with the library's `select_notifications`,
a page at a time; it publishes each page keyed by account id, waits for the broker to
acknowledge every message, and only then stores the new position. A crash re-publishes
from the last stored position: duplicates, never gaps (consumers dedupe on `event_id`).
While the broker or PostgreSQL is away it backs off and retries from that position
rather than exiting.
The library's table lock makes ids commit in order, so reading "after my position"
never passes over an event that commits later.

(The library's own `subscribe()` wraps the same LISTEN and select in two threads and
yields one notification at a time; reading pages directly keeps the relay one coroutine,
with nothing to hand across threads.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from eventsourcing.persistence import Notification, PersistenceError

from services.common.kafka import create_producer
from services.common.metrics import RELAY_POSITION, RELAY_PUBLISHED, RELAY_RETRIES
from services.invite_service.application import PortalAccess
from services.invite_service.envelopes import Origins, to_envelope

log = logging.getLogger(__name__)

# Re-read the log this often even without a NOTIFY: a guard against a lost LISTEN
# connection, not the way events are found.
SAFETY_POLL_SECONDS = 10.0

# An outage of the broker or of PostgreSQL: wait and try again from the stored position,
# rather than exit and leave every later event unpublished until someone restarts us.
OUTAGES = (KafkaError, OSError, PersistenceError, asyncpg.PostgresError, asyncpg.InterfaceError)
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0  # short: once the broker is back, the backlog should move within seconds


@dataclass
class RelayStats:
    published: int = 0
    position: int = 0
    failures: int = 0


async def _stop_quietly(producer: AIOKafkaProducer | None) -> None:
    if producer is None:
        return
    try:
        await producer.stop()
    except OUTAGES as exc:  # it may not have started, or its broker is gone: nothing to flush to
        log.debug("relay producer did not stop cleanly: %s", exc)


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
        self,
        app: PortalAccess,
        pool: asyncpg.Pool,
        bootstrap_servers: str,
        topic: str,
        name: str,
        batch_max: int = 500,
        publish_timeout_ms: int = 30_000,
    ) -> None:
        self._app = app
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._name = name
        self._batch_max = batch_max
        self._publish_timeout_ms = publish_timeout_ms
        self._origins = Origins(self._first_event)
        self.stats = RelayStats()

    def _first_event(self, aggregate_id):
        stored = self._app.recorder.select_events(aggregate_id, lte=1, limit=1)
        return self._app.mapper.to_domain_event(stored[0])

    async def run(self) -> None:
        position = await load_position(self._pool, self._name)
        self.stats.position = position
        log.info("relay %s starting after position %s, publishing to %s", self._name, position, self._topic)
        recorder = self._app.recorder
        # LISTEN on the channel the library NOTIFYs in every insert transaction. The event is
        # cleared before each read, so a NOTIFY that lands while we read is never lost.
        woken = asyncio.Event()

        def on_notify(*_) -> None:
            woken.set()

        lost = asyncio.Event()  # the LISTEN connection died (PostgreSQL restarted, or it was killed)

        async def listen() -> asyncpg.Connection:
            conn = await self._pool.acquire()
            try:
                await conn.add_listener(recorder.channel_name, on_notify)
            except BaseException:
                await self._pool.release(conn)
                raise
            lost.clear()

            def on_terminated(_conn) -> None:
                # asyncpg hands a dead connection back to the pool itself; wake the loop,
                # which listens again on a fresh one and re-reads the log in case it missed a NOTIFY.
                lost.set()
                woken.set()

            conn.add_termination_listener(on_terminated)
            return conn

        listener: asyncpg.Connection | None = None
        producer: AIOKafkaProducer | None = None
        failures = 0
        try:
            while True:
                woken.clear()
                try:
                    if listener is None or lost.is_set():
                        if listener is not None:
                            log.warning("relay %s lost its LISTEN connection; listening again", self._name)
                        listener = None
                        listener = await listen()
                    if producer is None:
                        producer = create_producer(self._bootstrap_servers, request_timeout_ms=self._publish_timeout_ms)
                        await producer.start()
                    # Pages of the log, straight from the library's recorder: reading in pages and
                    # publishing in pages is what lets the relay keep up with group-committed writes.
                    page = await asyncio.to_thread(recorder.select_notifications, position + 1, self._batch_max)
                    if page:
                        await self._publish(producer, page)
                        position = page[-1].id
                        failures = 0
                        continue
                except OUTAGES as exc:
                    # The broker or PostgreSQL is away. Nothing after `position` counts as
                    # published, so the next attempt starts there again: duplicates, never gaps.
                    failures += 1
                    self.stats.failures += 1
                    RELAY_RETRIES.inc()
                    delay = min(RETRY_FIRST_SECONDS * 2 ** (failures - 1), RETRY_MAX_SECONDS)
                    log.warning(
                        "relay %s cannot publish after position %d (attempt %d, retrying in %.1f s): %s: %s",
                        self._name, position, failures, delay, type(exc).__name__, exc,
                    )
                    await _stop_quietly(producer)
                    producer = None
                    await asyncio.sleep(delay)
                    continue
                try:
                    await asyncio.wait_for(woken.wait(), timeout=SAFETY_POLL_SECONDS)
                except TimeoutError:
                    pass  # only a safety net should a NOTIFY ever go missing
        finally:
            await _stop_quietly(producer)
            if listener is not None and not lost.is_set():
                await listener.remove_listener(recorder.channel_name, on_notify)
                await self._pool.release(listener)

    async def _publish(self, producer, batch: list[Notification]) -> None:
        started = time.perf_counter()
        envelopes = await asyncio.to_thread(self._envelopes, batch)
        acks = [
            await producer.send(self._topic, envelope.model_dump_json().encode(), key=envelope.key, headers=envelope.headers)
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
    relay = Relay(
        app, pool, settings.kafka_bootstrap_servers, settings.access_topic, settings.relay_name,
        batch_max=settings.relay_batch_max, publish_timeout_ms=settings.relay_publish_timeout_ms,
    )
    heartbeat = asyncio.create_task(run_heartbeat(pool, "relay"))
    try:
        await relay.run()
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        await pool.close()
        app.close()
