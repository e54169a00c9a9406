"""The relay: the notification-log follower → Kafka.

The event store is the outbox. A `LogFollower` hands the relay each page of the log after
its stored position; the relay publishes the page keyed by account id, waits for the broker
to acknowledge every message, and returns, and only then does the follower store the new
position. A crash re-publishes from the last stored position: duplicates, never gaps
(consumers dedupe on `event_id`). While the broker or PostgreSQL is away the follower backs
off and retries from that position rather than exiting.

An acknowledgement is only as good as the broker's storage (the embedded broker keeps
nothing across a restart). So the relay also remembers the highest offset acknowledged per
partition, and when an ack or a partition's end comes in at or below it, the broker has lost
what it acknowledged: the relay says so loudly, records the reset and publishes the whole
log again (broker_resets.py); consumers then read their partitions from the beginning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from eventsourcing.persistence import Notification

from services.common.audit_chain import AuditChain
from services.common.broker_resets import AckedOffsets, record_reset
from services.common.kafka import create_producer, ensure_topics, topic_end_offsets
from services.common.log_follower import DATABASE_OUTAGES, LogFollower, set_position
from services.common.metrics import BROKER_RESETS, RELAY_POSITION, RELAY_PUBLISHED, RELAY_RETRIES
from services.invite_service.application import PortalAccess
from services.invite_service.envelopes import LogEnvelopes

log = logging.getLogger(__name__)

# Re-read the log this often even without a NOTIFY (a guard against a lost NOTIFY, not the way
# events are found), and ask the broker this often whether it still has what it acknowledged.
SAFETY_POLL_SECONDS = 10.0

# An outage of the broker or of PostgreSQL: wait and try again from the stored position,
# rather than exit and leave every later event unpublished until someone restarts us.
OUTAGES = (KafkaError, *DATABASE_OUTAGES)
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 5.0  # short: once the broker is back, the backlog should move within seconds
SUMMARY_INTERVAL_SECONDS = 60.0
# The audit chain beside the relay reads the log at most this often: a chain transaction per
# quarter second rather than per page the relay publishes (its head goes out every few seconds).
AUDIT_GATHER_SECONDS = 0.25


@dataclass
class RelayStats:
    published: int = 0
    position: int = 0
    failures: int = 0
    resets: int = 0


def _events(count: int) -> str:
    return f"{count} event" if count == 1 else f"{count} events"


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
        broker_check_seconds: float | None = None,
    ) -> None:
        self._app = app
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._name = name
        self._batch_max = batch_max
        self._publish_timeout_ms = publish_timeout_ms
        self._broker_check_seconds = broker_check_seconds
        self._envelopes = LogEnvelopes(app)
        self._acked = AckedOffsets(name, topic)
        self._producer: AIOKafkaProducer | None = None
        self._follower: LogFollower | None = None
        self._check_due = True  # at start: the broker may have come back empty while we were down
        self._next_check = 0.0
        self.stats = RelayStats()

    async def run(self) -> None:
        self._follower = follower = LogFollower(
            self._app.recorder, self._pool, self._name,
            page_size=self._batch_max, outages=OUTAGES, safety_poll_seconds=SAFETY_POLL_SECONDS,
            retry_first_seconds=RETRY_FIRST_SECONDS, retry_max_seconds=RETRY_MAX_SECONDS, on_outage=self._on_outage,
        )
        summaries = asyncio.create_task(self._log_summaries())
        try:
            log.info("relay starting (position stored as %r), publishing to %s", self._name, self._topic)
            await follower.follow(self._publish, on_idle=self._check_broker)
        finally:
            summaries.cancel()
            await self._drop_producer()

    async def _on_outage(self, exc: BaseException) -> None:
        self.stats.failures += 1
        RELAY_RETRIES.inc()
        await self._drop_producer()
        self._check_due = True  # the broker we reconnect to may be a new, empty one

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await producer.stop()
        except OUTAGES as exc:  # it may not have started, or its broker is gone: nothing to flush to
            log.debug("relay producer did not stop cleanly: %s", exc)

    async def _connected(self) -> AIOKafkaProducer:
        if self._producer is None:
            if not self._acked.highest:
                await self._acked.load(self._pool)  # at start, and again after an outage if a reset's forget did not commit
            # Kept before it starts, so a failed start is stopped with it by the outage hook.
            self._producer = create_producer(self._bootstrap_servers, request_timeout_ms=self._publish_timeout_ms)
            await self._producer.start()
        return self._producer

    async def _publish(self, batch: Sequence[Notification]) -> None:
        """The follower's page handler: returns once the broker acknowledged every message."""
        started = time.perf_counter()
        producer = await self._connected()
        envelopes = await asyncio.to_thread(self._envelopes, batch)
        acks = [
            await producer.send(self._topic, envelope.model_dump_json().encode(), key=envelope.key,
                                headers=envelope.headers)
            for envelope in envelopes
        ]
        lowest: dict[int, int] = {}
        highest: dict[int, int] = {}
        for ack in await asyncio.gather(*acks):  # every message acknowledged (acks=all) before moving on
            lowest[ack.partition] = min(ack.offset, lowest.get(ack.partition, ack.offset))
            highest[ack.partition] = max(ack.offset, highest.get(ack.partition, ack.offset))
        if reason := self._acked.loss_in_acks(lowest):
            await self._broker_lost(reason, republish_through=batch[-1].id)
            return
        await self._acked.advance(self._pool, lowest, highest)
        position = batch[-1].id
        self.stats.published += len(batch)
        self.stats.position = position
        RELAY_PUBLISHED.inc(len(batch))
        RELAY_POSITION.set(position)
        log.debug(
            "relay published %s up to position %d in %.1f ms",
            _events(len(batch)), position, (time.perf_counter() - started) * 1000,
        )

    async def _check_broker(self) -> None:
        """The follower's idle hook: at start, after an outage and every safety-poll interval,
        ask the broker whether its partitions still reach what it acknowledged."""
        interval = SAFETY_POLL_SECONDS if self._broker_check_seconds is None else self._broker_check_seconds
        if not self._check_due and time.monotonic() < self._next_check:
            return
        if not self._acked.highest:
            await self._acked.load(self._pool)
        ends = await topic_end_offsets(self._bootstrap_servers, self._topic)
        self._check_due, self._next_check = False, time.monotonic() + interval
        if reason := self._acked.loss_in_ends(ends):
            await self._broker_lost(reason, republish_through=self._follower.position)
        elif ends is None:
            # Nothing acknowledged yet, so nothing lost: the topic was never created here.
            await ensure_topics(self._bootstrap_servers, [self._topic])

    async def _broker_lost(self, reason: str, republish_through: int) -> None:
        """The broker lost what it acknowledged: re-publish the log from the start, and say so."""
        assert self._follower is not None
        republish_through = max(republish_through, self._follower.position)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._follower.rewind(0, conn)
            await self._acked.forget(conn)
            epoch = await record_reset(conn, self._name, self._topic, reason, republish_through)
        self.stats.resets += 1
        BROKER_RESETS.inc()
        log.warning(
            "the broker lost events it had acknowledged on %s (%s): broker reset %d recorded; re-publishing "
            "the notification log from the start (through position %d at least); consumers will re-read it",
            self._topic, reason, epoch, republish_through,
        )
        created = await ensure_topics(self._bootstrap_servers, [self._topic])
        if created:
            log.warning("created the missing topic %s", self._topic)
        await self._drop_producer()  # fresh metadata: the topic may be new, with other partitions

    async def _log_summaries(self) -> None:
        last = (0, 0, 0)
        while True:
            await asyncio.sleep(SUMMARY_INTERVAL_SECONDS)
            now = (self.stats.published, self.stats.failures, self.stats.resets)
            if now != last:
                log.info(
                    "relay published %s in the last %.0f s, up to position %d (%d retries, %d broker resets in all)",
                    _events(now[0] - last[0]), SUMMARY_INTERVAL_SECONDS, self.stats.position, now[1], now[2],
                )
                last = now



async def run(settings, from_beginning: bool = False) -> None:
    """Composition root of `porchlight relay`: runs until cancelled.

    `from_beginning` re-publishes the whole log, for a broker known to have lost its topics
    (the embedded memory broker at every start): consumers skip what they already handled.
    """
    from services.common.database import create_pool, eventsourcing_env
    from services.common.heartbeat import run_heartbeat
    from services.common.probes import broker_probe
    from services.common.runtime import tune_gc_after_start

    app = await asyncio.to_thread(PortalAccess, eventsourcing_env(settings.database_url))
    # No reset per release: every statement here (positions, acked offsets, the chain's links
    # under a transaction-scoped lock) leaves no session state, and the two LISTEN connections
    # are held for the process's life and UNLISTEN before they go back (log_follower._Listener).
    pool = await create_pool(settings.database_url, max_size=5, session_state=False)
    if from_beginning:
        async with pool.acquire() as conn, conn.transaction():
            await set_position(conn, settings.relay_name, 0)
            # Expected, not an incident: the offsets acknowledged before belong to a log that is gone.
            await AckedOffsets(settings.relay_name, settings.access_topic).forget(conn)
        log.info("relay will re-publish the notification log from the start (--from-beginning)")
    relay = Relay(
        app, pool, settings.kafka_bootstrap_servers, settings.access_topic, settings.relay_name,
        batch_max=settings.relay_batch_max, publish_timeout_ms=settings.relay_publish_timeout_ms,
    )
    # The audit chain is the log's other follower: here, beside the relay, it shares the
    # process's recorder and pool and never touches the request path (audit_chain.py).
    chain = AuditChain(app.recorder, pool, settings.kafka_bootstrap_servers, settings.audit_topic,
                       head_seconds=settings.audit_head_seconds, gather_seconds=AUDIT_GATHER_SECONDS)
    # Its /readyz (METRICS_PORT): the loop beats, PostgreSQL takes the beat, the broker answers.
    tune_gc_after_start()  # the application, pool and chain live as long as the process
    heartbeat = asyncio.create_task(
        run_heartbeat(pool, "relay", {"broker": broker_probe(settings.kafka_bootstrap_servers)})
    )
    try:
        async with asyncio.TaskGroup() as followers:  # either failing ends both, and the process
            followers.create_task(relay.run())
            followers.create_task(chain.run())
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        await pool.close()
        app.close()
