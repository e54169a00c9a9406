"""`porchlight projector`: the read-side process."""

from __future__ import annotations

import asyncio
import logging

from projections.consumer import create_projector
from projections.projector import ProjectorStats
from services.common.consumer_errors import DATABASE
from services.common.database import create_pool, describe
from services.common.dead_letters import configure, stop_consuming
from services.common.heartbeat import run_heartbeat
from services.common.probes import database_probe
from services.common.reset_watcher import watch_broker_resets
from services.common.settings import ProjectorSettings

log = logging.getLogger(__name__)

SUMMARY_INTERVAL_SECONDS = 60.0


async def _log_summaries(stats: ProjectorStats) -> None:
    last = (0, 0, 0)
    while True:
        await asyncio.sleep(SUMMARY_INTERVAL_SECONDS)
        now = (stats.applied, stats.duplicates, stats.failures)
        if now != last:
            log.info("projector: %d applied, %d duplicates skipped, %d failures retried", *now)
            last = now


async def run(settings: ProjectorSettings) -> None:
    """Project until cancelled, then stop consuming before the pool closes."""
    pool = await create_pool(settings.database_url)
    stats = ProjectorStats()
    try:
        brokers = create_projector(settings, pool, stats)
        for broker in brokers:
            configure(broker, settings=settings, probes={DATABASE: database_probe(pool)})
        try:
            await asyncio.gather(*(broker.start() for broker in brokers))  # join both groups at once
            log.info(
                "projector consuming %s and %s as group %s into %s",
                settings.access_topic,
                settings.deliveries_topic,
                settings.projector_group_id,
                describe(settings.database_url),
            )
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(run_heartbeat(pool, "projector"))
                tasks.create_task(_log_summaries(stats))
                tasks.create_task(watch_broker_resets(pool, brokers, "projector"))
        finally:
            # Ends any retry backoff at once, then waits for an in-flight handler, which still needs the pool.
            await stop_consuming(*brokers)
            log.info("projector stopped: %d applied, %d duplicates skipped", stats.applied, stats.duplicates)
    finally:
        await pool.close()
