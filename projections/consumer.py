"""The projector's subscribers: access events and delivery outcomes into the read models.

The access topic has one subscriber that applies each fetched batch in one transaction
(batches.py), giving each event to the typed handler of its type (status_list.py); every
other type is only recorded as applied. With PROJECTOR_BATCH_MAX=1 it is instead one
typed handler per event type, routed by the `type` header (services/common/event_routing.py). The deliveries topic has one typed handler
(deliveries.py), given a fetched batch at a time in one transaction the same way.

Ack after processing (NACK_ON_ERROR): the offset is committed only once the read model
and its applied-record have committed; a failure seeks back so the message comes again.
Redelivery is harmless because every handler is idempotent. The consumers start from the
earliest offset: Tansu forgets committed offsets on restart (NOTES.md), and re-reading is
cheap next to missing what was published before we joined. A message that can never
validate (not an envelope, or a known type with a malformed payload) is dead-lettered
rather than retried (services/common/dead_letters.py).
"""

from __future__ import annotations

import logging

import asyncpg
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from projections import batches, deliveries, status_list
from projections.projector import EventSource, Projector, ProjectorStats
from services.common import batch_records
from services.common.dead_letters import dead_letter_middleware
from services.common.event_routing import subscribe_by_type
from services.common.kafka import batch_timeout_ms, broker_logger, consumer_options
from services.common.settings import ProjectorSettings


def create_projector(
    settings: ProjectorSettings,
    pool: asyncpg.Pool | None,
    stats: ProjectorStats | None = None,
    event_source: EventSource | None = None,
) -> list[KafkaBroker]:
    """The composition root: one broker per consumer group, each writing through `pool`.

    Each subscriber has its own group: sharing one group between consumers of different
    topics makes every join or leave of either rebalance both. And each has its own broker,
    so the two can be started together: a FastStream broker starts its subscribers one
    after the other, and aiokafka's start waits for the group's first assignment, which
    Tansu holds ~5 s (10 s for the projector to start instead of 5).
    """
    projector = Projector(pool, stats, event_source)
    subscriber_options = dict(
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        # Off the invite-to-email path: a longer fetch wait, fewer idle fetches (kafka.py).
        **consumer_options(settings, on_email_path=False),
    )

    access = _broker(settings, projector, "Projects access events into the staff status list.")
    if settings.projector_batch_max > 1:
        access.subscriber(
            settings.access_topic,
            group_id=settings.projector_group_id,
            title="projector.access",
            description="Access events, a fetched batch per transaction. Each record is an access event envelope "
            "as the relay publishes it (relay-access-events), parsed here one by one and given to the status "
            "list's typed handler of its type; other types are only recorded",
            batch=True,
            max_records=settings.projector_batch_max,
            batch_timeout_ms=batch_timeout_ms(settings),
            parser=batch_records.parse_batch,
            decoder=batch_records.raw_bodies,
            **subscriber_options,
        )(batches.on_access_batch)
    else:
        access_events = access.subscriber(
            settings.access_topic,
            group_id=settings.projector_group_id,
            title="projector.access",
            description="Access events: a typed handler per type the status list shows; the rest only recorded",
            **subscriber_options,
        )
        subscribe_by_type(access_events, status_list.HANDLERS, otherwise=status_list.on_other_event)

    outcomes = _broker(settings, projector, "Projects delivery outcomes onto the accounts they concern.")
    if settings.projector_batch_max > 1:
        outcomes.subscriber(
            settings.deliveries_topic,
            group_id=f"{settings.projector_group_id}.deliveries",
            title="projector.deliveries",
            description="Delivery outcomes, a fetched batch per transaction. Each record is a delivery outcome "
            "as the notifier publishes it, parsed here one by one",
            batch=True,
            max_records=settings.projector_batch_max,
            batch_timeout_ms=batch_timeout_ms(settings),
            parser=batch_records.parse_batch,
            decoder=batch_records.raw_bodies,
            **subscriber_options,
        )(batches.on_delivery_batch)
    else:
        outcomes.subscriber(
            settings.deliveries_topic,
            group_id=f"{settings.projector_group_id}.deliveries",
            title="projector.deliveries",
            **subscriber_options,
        )(deliveries.on_delivery)

    return [access, outcomes]


def _broker(settings: ProjectorSettings, projector: Projector, description: str) -> KafkaBroker:
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
    broker.context.set_global("projector", projector)
    return broker
