"""The projector's subscribers: access events and delivery outcomes into the read models.

Ack after processing (NACK_ON_ERROR): the offset is committed only once the read model
and its applied-record have committed; a failure seeks back so the message comes again.
Redelivery is harmless because every `apply` is idempotent. The consumers start from the
earliest offset: Tansu forgets committed offsets on restart (NOTES.md), and re-reading is
cheap next to missing what was published before we joined. A message that can never
validate is dead-lettered rather than retried (services/common/dead_letters.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from contracts import AccessEventV1, DeliveryOutcomeV1
from projections import deliveries, status_list
from services.common.dead_letters import dead_letter_middleware
from services.common.kafka import broker_logger
from services.common.metrics import PROJECTED
from services.common.settings import ProjectorSettings

log = logging.getLogger(__name__)

# A failed apply is retried by redelivery; the pause keeps a database outage from
# turning into a tight loop of seeks.
RETRY_DELAY_SECONDS = 1.0
_TRANSIENT = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass
class ProjectorStats:
    """Counts for the periodic summary line (see main.py)."""

    applied: int = 0
    duplicates: int = 0
    failures: int = 0

    def count(self, applied: bool) -> None:
        if applied:
            self.applied += 1
        else:
            self.duplicates += 1


def create_projector(
    settings: ProjectorSettings,
    pool: asyncpg.Pool,
    stats: ProjectorStats | None = None,
) -> list[KafkaBroker]:
    """The composition root: one broker per consumer group, each writing through `pool`.

    Each subscriber has its own group: sharing one group between consumers of different
    topics makes every join or leave of either rebalance both. And each has its own broker,
    so the two can be started together: a FastStream broker starts its subscribers one
    after the other, and aiokafka's start waits for the group's first assignment, which
    Tansu holds ~5 s (10 s for the projector to start instead of 5).
    """
    stats = stats if stats is not None else ProjectorStats()
    subscriber_options = dict(
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )

    async def _apply(what: str, ident: object, apply, msg) -> None:
        try:
            async with pool.acquire() as conn:
                applied = await apply(conn, msg)
        except _TRANSIENT as exc:
            stats.failures += 1
            log.warning("projecting %s %s failed, will retry: %s", what, ident, exc)
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            raise
        stats.count(applied)
        PROJECTED.labels("applied" if applied else "duplicate").inc()
        log.debug("%s %s %s", "applied" if applied else "already applied", what, ident)

    access = _broker(settings, "Projects access events into the staff status list.")

    @access.subscriber(
        settings.access_topic, group_id=settings.projector_group_id, title="projector.access", **subscriber_options
    )
    async def on_access_event(msg: AccessEventV1) -> None:
        await _apply(msg.type, msg.event_id, status_list.apply, msg)

    outcomes = _broker(settings, "Projects delivery outcomes onto the accounts they concern.")

    @outcomes.subscriber(
        settings.deliveries_topic,
        group_id=f"{settings.projector_group_id}.deliveries",
        title="projector.deliveries",
        **subscriber_options,
    )
    async def on_delivery(msg: DeliveryOutcomeV1) -> None:
        await _apply("delivery", f"{msg.delivery_id}#{msg.attempt}", deliveries.apply, msg)

    return [access, outcomes]


def _broker(settings: ProjectorSettings, description: str) -> KafkaBroker:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id="porchlight-projector",
        acks="all",  # for dead letters, the only thing the projector publishes
        logger=broker_logger(),
        # FastStream logs every message at INFO; per-message lines belong at DEBUG here.
        log_level=logging.DEBUG,
        description=description,
    )
    broker.add_middleware(dead_letter_middleware(broker, settings.dlq_topic, consumer="projector"))
    return broker
