"""Composition root and process entry of the notifier.

    broker, notifier = create_notifier(settings)   # builds, connects nothing (AsyncAPI can use it)
    await run(settings)                            # connects, consumes until cancelled, shuts down

`run` is what `porchlight notifier` and the dev launcher call; cancel its task to stop it.
"""

from __future__ import annotations

import asyncio
import logging

from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from contracts import DeliveryOutcomeV1
from services.common.database import create_pool, describe
from services.common.consumer_errors import DATABASE
from services.common.dead_letters import configure, dead_letter_middleware, stop_consuming
from services.common.event_routing import subscribe_by_type
from services.common.heartbeat import run_heartbeat
from services.common.kafka import broker_logger
from services.common.probes import database_probe, tcp_probe
from services.common.reset_watcher import watch_broker_resets
from services.common.settings import NotifierSettings
from services.notifier import handlers
from services.notifier.consumer import Notifier
from services.notifier.smtp import SmtpSender

log = logging.getLogger("porchlight.notifier")

PROCESS = "notifier"


def create_notifier(settings: NotifierSettings) -> tuple[KafkaBroker, Notifier]:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        acks="all",
        logger=broker_logger(),
        # Per-message "Received"/"Processed" lines at DEBUG: each delivery logs its own line.
        log_level=logging.DEBUG,
        enable_idempotence=False,  # Tansu has no idempotent producer; the ledger dedupes instead
        description="Porchlight notifier: sends invitation emails and publishes delivery outcomes",
    )
    outcomes = broker.publisher(
        settings.deliveries_topic,
        title="delivery-outcomes",
        description="One outcome per (access event, channel); keyed by account id; dedupe on delivery_id",
        schema=DeliveryOutcomeV1,
    )
    # A message that is not an AccessEventV1 at all can never be sent: park it, don't block.
    broker.add_middleware(dead_letter_middleware(broker, settings.dlq_topic, consumer=PROCESS))
    notifier = Notifier(settings, SmtpSender(settings), outcomes)
    broker.context.set_global("notifier", notifier)
    access_events = broker.subscriber(
        settings.access_topic,
        group_id=settings.notifier_group_id,
        # Tansu forgets committed offsets on restart; start from the beginning and let the
        # ledger skip what was sent already, rather than miss what arrived while we were down.
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        # One Kafka consumer per worker in the group, so partitions are sent in parallel while
        # each partition (so each account) stays in order.
        max_workers=settings.notifier_workers,
        # Commit the offset only after the handler finished; on an error seek back so the
        # event comes again (never ACK_FIRST, which commits before the email is sent).
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="notifier-access-events",
        description="Access events, one typed handler per type that sends something; other types are acknowledged",
    )
    subscribe_by_type(access_events, handlers.HANDLERS, otherwise=handlers.on_other_event)
    return broker, notifier


async def run(settings: NotifierSettings) -> None:
    """Run the notifier until cancelled, then stop consuming, beating and the pool, in that order."""
    broker, notifier = create_notifier(settings)
    pool = await create_pool(settings.database_url, max_size=5)
    heartbeat: asyncio.Task | None = None
    resets: asyncio.Task | None = None
    try:
        notifier.pool = pool
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
        await heartbeat  # runs until this task is cancelled
    finally:
        if resets is not None:
            resets.cancel()  # before the broker stops: it seeks the broker's consumers
        # Shielded: the caller's cancellation must not cut the graceful stop short.
        await asyncio.shield(_shutdown(broker, heartbeat, pool, notifier))


async def _shutdown(broker: KafkaBroker, heartbeat: asyncio.Task | None, pool, notifier: Notifier) -> None:
    # Ends a retry backoff at once (the message stays unacknowledged, so it comes again after
    # the restart), then waits for an in-flight handler, so its ledger commit and ack finish.
    await stop_consuming(broker)
    await notifier.sender.close()  # QUIT the SMTP connections kept open between messages
    if heartbeat is not None:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
    await pool.close()
    log.info("notifier stopped")
