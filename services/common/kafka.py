"""Broker connections with the settings Tansu and real Kafka both accept.

Tansu's memory broker has no idempotent producer or transactions, so producers use
`acks="all"` with idempotence off; consumers are idempotent instead (rule 2).
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 3


def broker_logger() -> logging.Logger:
    """The logger FastStream brokers are given, so their lines share the process's format
    (FastStream's default logger has a handler and format of its own)."""
    return logging.getLogger("porchlight.faststream")


def create_producer(bootstrap_servers: str, **kwargs) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=False,
        linger_ms=kwargs.pop("linger_ms", 2),
        **kwargs,
    )


def consumer_options(settings, *, on_email_path: bool) -> dict:
    """aiokafka settings for a FastStream subscriber, by where the consumer sits.

    An idle consumer sends one fetch per `fetch_max_wait_ms`, and the embedded broker holds
    each fetch for the whole wait even when data arrives (a real Kafka answers at once), so
    the wait trades idle CPU (the consumer's and the broker's) against latency there. On the
    invite-to-email path it stays short (KAFKA_FETCH_MAX_WAIT_MS); elsewhere it is longer
    (KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS). `fetch_min_bytes=1`: answer with whatever there is.
    """
    wait = settings.kafka_fetch_max_wait_ms if on_email_path else settings.kafka_background_fetch_max_wait_ms
    return dict(fetch_max_wait_ms=wait, fetch_min_bytes=1)


def batch_timeout_ms(settings) -> int:
    """How long a batch subscriber's getmany waits for buffered records. It returns as soon as
    records are buffered, but FastStream sleeps as long again after an empty one, so this
    stays short: it is the Python loop's wake-up, not a fetch to the broker."""
    return settings.kafka_fetch_max_wait_ms


async def ensure_topics(bootstrap_servers: str, names: list[str], partitions: int = DEFAULT_PARTITIONS) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(name=n, num_partitions=partitions, replication_factor=1) for n in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another process created it between our list and create
        return missing
    finally:
        await admin.close()


async def broker_reachable(bootstrap_servers: str, timeout: float = 2.0) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as "not ready"
        log.info("broker not reachable: %s", exc)
        return False
    finally:
        await admin.close()


async def topic_end_offsets(bootstrap_servers: str, topic: str, timeout_ms: int = 5000) -> dict[int, int] | None:
    """Each partition's end offset (the offset the next message will get), or None when the
    broker has no such topic. A client without a group, so it joins and commits nothing."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, request_timeout_ms=timeout_ms)
    await consumer.start()
    try:
        # Metadata of every topic: unlike a request naming the topic, it does not make Tansu
        # create it. (Awaiting something before stop() also matters: aiokafka 0.14 raises
        # CancelledError from a group-less consumer stopped before its first loop turn.)
        await consumer.topics()
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return None
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in sorted(partitions)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()
