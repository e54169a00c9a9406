"""Composition root and process entry of `porchlight autoinvite`.

    await run(settings)   # builds the Application and the broker, consumes until cancelled
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from services.autoinvite.consumer import PROCESS, AutoinviteStats, create_autoinvite
from services.common.consumer_errors import DATABASE
from services.common.database import create_pool, describe, eventsourcing_env
from services.common.dead_letters import configure, stop_consuming
from services.common.heartbeat import run_heartbeat
from services.common.probes import database_probe
from services.common.settings import AutoinviteSettings
from services.invite_service.application import PortalAccess

log = logging.getLogger("porchlight.autoinvite")


async def run(settings: AutoinviteSettings, stats: AutoinviteStats | None = None) -> None:
    """Consume share events until cancelled, then stop consuming before the stores close."""
    # No secret key: an invite stores a nonce; the notifier derives the link from it.
    app = await asyncio.to_thread(
        PortalAccess, eventsourcing_env(settings.database_url), commit_batch_max=settings.commit_batch_max
    )
    # A batch's shares read their trips concurrently, each in a thread waiting on PostgreSQL: more
    # threads than asyncio's default (cores + 4), fewer than the library's connections (8 + 8).
    app.read_executor = ThreadPoolExecutor(settings.autoinvite_threads, "autoinvite-read")
    pool = await create_pool(settings.database_url, max_size=2)  # the heartbeat and the probe
    stats = stats if stats is not None else AutoinviteStats()
    broker = create_autoinvite(settings, app, stats)
    configure(broker, settings=settings, probes={DATABASE: database_probe(pool)})
    try:
        await broker.start()
        log.info(
            "autoinvite consuming %s as group %s into %s",
            settings.trip_shares_topic, settings.autoinvite_group_id, describe(settings.database_url),
        )
        await run_heartbeat(pool, PROCESS)  # until cancelled
    finally:
        # Shielded: a cancelled caller must not cut short the wait for an in-flight share.
        await asyncio.shield(_shutdown(broker, pool, app, stats))


async def _shutdown(broker, pool, app: PortalAccess, stats: AutoinviteStats) -> None:
    await stop_consuming(broker)
    await pool.close()
    await asyncio.to_thread(app.close)
    app.read_executor.shutdown(wait=False)
    log.info("autoinvite stopped: %d invited, %d skipped, %d later shares, %d repeats",
             stats.invited, stats.skipped, stats.later_share, stats.already_handled)
