"""The auto-invite consumer of `trips.shares.v1`: a fetched batch at a time (batch.py), or
one typed handler per share with AUTOINVITE_BATCH_MAX=1.

Its own consumer group (`AUTOINVITE_GROUP_ID`), so neither the notifier's nor the
projector's progress depends on it. Ack after processing (NACK_ON_ERROR): the offset is
committed only once the share's decision (and invite) is in the event store; a failure seeks
back and the share comes again. Redelivery is harmless: the trip aggregate remembers every
share's event id (services/invite_service/commands/auto_invite.py). A message that is not a
v1 share (bad JSON, a missing field, an unknown kind) fails validation in the handler and is
parked on the dead-letter topic with the reason (services/common/dead_letters.py); fields a
producer added are ignored. Starts from the earliest offset, as the other consumers do: the
embedded broker forgets committed offsets on restart, and the trip aggregates skip repeats.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from contracts.shares import TripShareV1
from services.autoinvite import batch
from services.common import batch_records
from services.common.context import LoopContext
from services.common.dead_letters import dead_letter_middleware
from services.common.kafka import batch_timeout_ms, broker_logger, consumer_options
from services.common.settings import AutoinviteSettings

log = logging.getLogger("porchlight.autoinvite")

PROCESS = "autoinvite"


@dataclass
class AutoinviteStats:
    """Outcomes per kind, for the process's summary line and the benchmark."""

    invited: int = 0
    skipped: int = 0
    later_share: int = 0
    already_handled: int = 0

    @property
    def handled(self) -> int:
        return self.invited + self.skipped + self.later_share + self.already_handled


def create_autoinvite(settings: AutoinviteSettings, app: Any, stats: AutoinviteStats | None = None) -> KafkaBroker:
    """The composition root's broker; `app` is the write side's Application (None only for documents)."""
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id="porchlight-autoinvite",
        acks="all",  # for dead letters, the only thing it publishes
        enable_idempotence=False,
        logger=broker_logger(),
        log_level=logging.DEBUG,
        description="Porchlight auto-invite: turns the first invoice or proposal share of a trip into an invite",
    )
    broker.add_middleware(dead_letter_middleware(broker, settings.dlq_topic, consumer=PROCESS))
    broker.context.set_global("portal_access", app)
    broker.context.set_global("autoinvite_stats", stats if stats is not None else AutoinviteStats())
    options = dict(
        group_id=settings.autoinvite_group_id,
        auto_offset_reset="earliest",
        # Not on the invite-to-email path: a longer fetch wait, less CPU spent polling while idle.
        **consumer_options(settings, on_email_path=False),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="autoinvite.trip-shares",
    )
    about = ("Upstream share events (key: trip id). The first invoice or proposal share of a trip invites its "
             "primary traveler with an email (else the first with one) when the workspace has auto-invite on")
    if settings.autoinvite_batch_max > 1:
        broker.subscriber(
            settings.trip_shares_topic,
            batch=True,
            max_records=settings.autoinvite_batch_max,
            batch_timeout_ms=batch_timeout_ms(settings),
            parser=batch_records.parse_batch,
            decoder=batch_records.raw_bodies,
            description=about + "; a fetched batch at a time, each record a TripShareV1 (see trip-share-v1.json)",
            **options,
        )(batch.on_share_batch)
    else:
        # One Kafka consumer per worker: partitions are decided in parallel, each in order.
        broker.subscriber(
            settings.trip_shares_topic, description=about, max_workers=settings.autoinvite_workers, **options
        )(on_trip_share)
    return broker


async def on_trip_share(
    msg: TripShareV1,
    app: Annotated[Any, LoopContext("portal_access")],
    stats: Annotated[AutoinviteStats, LoopContext("autoinvite_stats")],
) -> None:
    """One share (AUTOINVITE_BATCH_MAX=1): FastStream validates it against the contract."""
    await handle(msg, app, stats)


async def handle(msg: TripShareV1, app: Any, stats: AutoinviteStats) -> None:
    result = await app.auto_invite(msg)
    setattr(stats, result.outcome, getattr(stats, result.outcome) + 1)
    if result.outcome in ("invited", "skipped"):
        log.info(
            "trip %s/%s first %s share %s: %s%s",
            msg.workspace, msg.trip_id, msg.kind, msg.event_id, result.outcome,
            f" ({result.reason})" if result.reason else f" account {result.account_id}",
        )
