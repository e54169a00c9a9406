"""Consumers read their partitions again from the beginning after a broker reset.

When the relay finds the broker lost what it acknowledged, it records a reset in PostgreSQL
and publishes the whole log again (broker_resets.py). A consumer that kept its place in the
old log would skip that many of the re-published records: its position (in memory, or a
committed offset a real cluster kept for a topic it then recreated) means nothing in the
new log. So each consumer process runs this watcher, which polls the latest reset of the
topics it consumes and, when a new one appears, seeks every partition its subscribers hold
to the beginning. Re-reading is safe: every consumer is idempotent (ledger, applied records).

The other half needs no code of ours: a position past the end of a partition gets
OFFSET_OUT_OF_RANGE from the broker, and aiokafka then moves to the earliest offset because
our subscribers use `auto_offset_reset="earliest"`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError, KafkaError
from faststream.kafka import KafkaBroker

from services.common.broker_resets import latest_reset
from services.common.metrics import CONSUMER_REWINDS

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
_TRANSIENT = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError, IllegalStateError)


def _consumers(subscriber) -> list[AIOKafkaConsumer]:
    # FastStream 0.7: one consumer per subscriber, or `consumer_subgroup` with max_workers > 1.
    return list(getattr(subscriber, "consumer_subgroup", None) or ([subscriber.consumer] if subscriber.consumer else []))


async def rewind_to_beginning(brokers: Iterable[KafkaBroker]) -> bool:
    """Seek every assigned partition of every subscriber to its beginning. False if some
    subscriber holds no partition yet (its group is still joining): try again later."""
    complete = True
    for broker in brokers:
        for subscriber in broker.subscribers:
            consumers = _consumers(subscriber)
            assigned = [(c, c.assignment()) for c in consumers]
            if consumers and not any(partitions for _, partitions in assigned):
                complete = False
            for consumer, partitions in assigned:
                if partitions:
                    await consumer.seek_to_beginning(*partitions)
                    # Commit the beginning too: a rebalance right after the seek would otherwise
                    # hand the partition back at the offset committed before it, past what we
                    # meant to re-read (seen under load: the group rejoins after a broker restart).
                    await consumer.commit(dict(await consumer.beginning_offsets(list(partitions))))
    return complete


def subscribed_topics(brokers: Iterable[KafkaBroker]) -> list[str]:
    return sorted({name for broker in brokers for sub in broker.subscribers for name in sub.topic_names})


async def watch_broker_resets(pool: asyncpg.Pool, brokers: list[KafkaBroker], process: str) -> None:
    """Until cancelled: on each new broker reset of a topic the brokers' subscribers consume,
    read everything they consume again from the beginning."""
    topics = subscribed_topics(brokers)
    seen = settled = None
    while True:
        try:
            latest = await latest_reset(pool, topics)
            if seen is None:
                # At start, a reset the relay is still re-publishing for may not have been seen
                # by whoever consumed before us (a restart in between): read from the start once.
                seen = settled = 0 if latest is None else latest.epoch - (0 if latest.caught_up else 1)
            if latest is not None and latest.epoch > seen and await rewind_to_beginning(brokers):
                seen = latest.epoch
                CONSUMER_REWINDS.labels(process).inc()
                log.warning(
                    "%s: broker reset %d on %s (%s): reading every partition again from the beginning",
                    process, latest.epoch, latest.topic, latest.reason,
                )
            elif (
                latest is not None and latest.epoch == seen and settled < seen and latest.caught_up
                and await rewind_to_beginning(brokers)
            ):
                # Once more after the relay has re-published everything: a retry that seeks back
                # to a failed message, or a rebalance, between the first rewind and the end of the
                # re-publish could have skipped part of the new log. Re-reading is idempotent.
                settled = seen
                CONSUMER_REWINDS.labels(process).inc()
                log.info("%s: the log is re-published after broker reset %d: read once more from the beginning",
                         process, seen)
        except _TRANSIENT as exc:
            log.warning("%s: cannot check for broker resets, trying again: %s: %s", process, type(exc).__name__, exc)
        await asyncio.sleep(POLL_SECONDS)
