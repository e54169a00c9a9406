"""Composition root and process entry of the notifier.

    broker, notifier = create_notifier(settings)   # builds, connects nothing (AsyncAPI can use it)
    await run(settings)                            # connects, consumes until cancelled, shuts down

`run` is what `porchlight notifier` and the dev launcher call; cancel its task to stop it.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from contracts import DeliveryOutcomeV1
from services.common import batch_records
from services.common.database import describe
from services.common.consumer_errors import DATABASE
from services.common.dead_letters import configure, dead_letter_middleware, stop_consuming
from services.common.heartbeat import run_heartbeat
from services.common.kafka import broker_logger, consumer_options, create_producer
from services.common.prompt_batches import prompt_batches
from services.common.probes import database_probe, tcp_probe
from services.common.reset_watcher import watch_broker_resets
from services.common.settings import NotifierSettings
from services.notifier import handlers
from services.notifier import seams
from services.notifier.consumer import Notifier
from services.notifier.retries import run_retries

log = logging.getLogger("porchlight.notifier")

PROCESS = "notifier"


def create_notifier(settings: NotifierSettings) -> tuple[KafkaBroker, Notifier]:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        logger=broker_logger(),
        # Per-batch "Received"/"Processed" lines at DEBUG: each batch logs its own summary.
        log_level=logging.DEBUG,
        enable_idempotence=False,  # Tansu has no idempotent producer; the ledger dedupes instead
        description="Porchlight notifier: sends every client and team message and publishes delivery outcomes",
    )
    outcomes = broker.publisher(
        settings.deliveries_topic,
        title="delivery-outcomes",
        description="One outcome per delivery attempt (and the provider's later delivered/bounced report); "
        "keyed by account id; dedupe on (delivery_id, attempt, status)",
        schema=DeliveryOutcomeV1,
    )
    # A message that is not an AccessEventV1 at all can never be sent: park it, don't block.
    broker.add_middleware(dead_letter_middleware(broker, settings.dlq_topic, consumer=PROCESS))
    notifier = Notifier(settings, outcomes)
    broker.context.set_global("notifier", notifier)
    subscriber = broker.subscriber(
        settings.access_topic,
        group_id=settings.notifier_group_id,
        # Tansu forgets committed offsets on restart; start from the beginning and let the
        # ledger skip what was sent already, rather than miss what arrived while we were down.
        auto_offset_reset="earliest",
        **consumer_options(settings, on_email_path=True),
        # A fetched batch is claimed, sent and recorded together: a round trip per step, not per
        # message. Its accounts are sent in parallel, each account's messages in order.
        batch=True,
        max_records=settings.notifier_batch_max,
        batch_timeout_ms=settings.kafka_fetch_max_wait_ms,
        parser=batch_records.parse_batch,
        decoder=batch_records.raw_bodies,
        # Commit the offset only after the handler finished; on an error seek back so the
        # event comes again (never ACK_FIRST, which commits before the email is sent).
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="notifier-access-events",
        description="Access events, a fetched batch at a time. Each record is an access event envelope as the "
        "relay publishes it (relay-access-events); types that send nothing are acknowledged",
    )
    subscriber(handlers.on_access_batch)
    # Records wait only in aiokafka's getmany, not in FastStream's sleep after an empty one.
    prompt_batches(subscriber)
    return broker, notifier


async def run(settings: NotifierSettings) -> None:
    """Run the notifier until cancelled, then stop consuming, beating and the pool, in that order."""
    broker, notifier = create_notifier(settings)
    # No session reset on release: asyncpg's default (advisory unlock, CLOSE ALL, UNLISTEN, RESET
    # ALL) is a round trip to PostgreSQL per release (two a batch here), and this process sets
    # no session state (no LISTEN, session locks or SET). An open transaction is still rolled back.
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=5, reset=_no_session_state)
    heartbeat: asyncio.Task | None = None
    resets: asyncio.Task | None = None
    retries: asyncio.Task | None = None
    producer = create_producer(settings.kafka_bootstrap_servers, client_id="porchlight-notifier-outcomes")
    try:
        await producer.start()
        notifier.producer = producer
        notifier.pool = pool
        notifier.gmail = seams.GmailRouter.from_settings(settings, pool, notifier.email)
        # A failed send counts toward dead-lettering only while PostgreSQL and the relay answer.
        smtp = tcp_probe(settings.smtp_host, settings.smtp_port)
        configure(broker, settings=settings, probes={DATABASE: database_probe(pool), "smtp": smtp})
        await broker.start()
        log.info(
            "notifier consuming topic=%s group=%s db=%s smtp=%s:%s",
            settings.access_topic, settings.notifier_group_id, describe(settings.database_url),
            settings.smtp_host, settings.smtp_port,
        )
        resets = asyncio.create_task(watch_broker_resets(pool, [broker], PROCESS), name="notifier-broker-resets")
        heartbeat = asyncio.create_task(run_heartbeat(pool, PROCESS), name="notifier-heartbeat")
        retries = asyncio.create_task(
            run_retries(notifier, settings.notifier_retry_poll_seconds), name="notifier-retries"
        )
        await heartbeat  # runs until this task is cancelled
    finally:
        if resets is not None:
            resets.cancel()  # before the broker stops: it seeks the broker's consumers
        if retries is not None:
            # A retry cut short leaves its lease, which runs out: the delivery is sent again later.
            retries.cancel()
            await asyncio.gather(retries, return_exceptions=True)
        # Shielded: the caller's cancellation must not cut the graceful stop short.
        await asyncio.shield(_shutdown(broker, heartbeat, pool, notifier, producer))


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo (see run)."""


async def _shutdown(broker: KafkaBroker, heartbeat: asyncio.Task | None, pool, notifier: Notifier, producer) -> None:
    # Ends a retry backoff at once (the message stays unacknowledged, so it comes again after
    # the restart), then waits for an in-flight handler, so its ledger commit and ack finish.
    await stop_consuming(broker)
    await producer.stop()  # after the handlers: their outcomes are flushed first
    await notifier.published()  # acknowledged (or failed) by now: mark what was acknowledged
    try:
        await notifier.flush_marks()
    except Exception as exc:  # noqa: BLE001 - unmarked outcomes are only published again by the outbox
        log.warning("could not mark the last outcomes published: %s: %s", type(exc).__name__, exc)
    for provider in (notifier.gmail, notifier.email, notifier.sms):
        if provider is not None:
            await provider.close()  # QUIT the SMTP connections kept open between messages, and the like
    if heartbeat is not None:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
    await pool.close()
    log.info("notifier stopped")
