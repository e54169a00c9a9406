"""`porchlight projector`: the read-side process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from projections.consumer import create_projector
from projections.positions import report_lag
from projections.projector import EventSource, ProjectorStats
from services.common.consumer_errors import DATABASE
from services.common.database import create_pool, describe
from services.common.dead_letters import configure, stop_consuming
from services.common.heartbeat import run_heartbeat
from services.common.probes import broker_probe, database_probe
from services.common.reset_watcher import watch_broker_resets
from services.common.runtime import tune_gc_after_start
from services.common.settings import ProjectorSettings

log = logging.getLogger(__name__)

SUMMARY_INTERVAL_SECONDS = 60.0

EventStoreReader = Callable[[str, asyncpg.Pool], EventSource]


async def _log_summaries(stats: ProjectorStats) -> None:
    last = (0, 0, 0)
    while True:
        await asyncio.sleep(SUMMARY_INTERVAL_SECONDS)
        now = (stats.applied, stats.duplicates, stats.failures)
        if now != last:
            log.info("projector: %d applied, %d duplicates skipped, %d failures retried", *now)
            last = now


async def run(settings: ProjectorSettings, event_store_reader: EventStoreReader | None = None) -> None:
    """Project until cancelled, then stop consuming before the pool closes.

    `event_store_reader(database_url, pool)` builds what reads lost events back from the
    event store (the composition root passes it: the read side never imports the write
    side); without it, an aggregate's version jump is applied as it comes.
    """
    pool = await create_pool(settings.database_url)
    stats = ProjectorStats()
    try:
        event_source = None
        if event_store_reader is not None:
            event_source = await asyncio.to_thread(event_store_reader, settings.database_url, pool)
        brokers = create_projector(settings, pool, stats, event_source)
        for broker in brokers:
            configure(broker, settings=settings, probes={DATABASE: database_probe(pool)})
        try:
            await asyncio.gather(*(broker.start() for broker in brokers))  # join both groups at once
            tune_gc_after_start()  # the pool and brokers live as long as the process
            log.info(
                "projector consuming %s and %s as group %s into %s",
                settings.access_topic,
                settings.deliveries_topic,
                settings.projector_group_id,
                describe(settings.database_url),
            )
            async with asyncio.TaskGroup() as tasks:
                # Its /readyz (METRICS_PORT): the loop beats, PostgreSQL takes the beat, the broker answers.
                broker_up = broker_probe(settings.kafka_bootstrap_servers)
                tasks.create_task(run_heartbeat(pool, "projector", {"broker": broker_up}))
                tasks.create_task(_log_summaries(stats))
                tasks.create_task(watch_broker_resets(pool, brokers, "projector"))
                tasks.create_task(report_lag(pool))
        finally:
            # Ends any retry backoff at once, then waits for an in-flight handler, which still needs the pool.
            await stop_consuming(*brokers)
            log.info("projector stopped: %d applied, %d duplicates skipped", stats.applied, stats.duplicates)
    finally:
        await pool.close()
