"""The audit chain: every stored event linked by hash to the one before it in the log.

    hash(n) = SHA-256( hash(n-1) | position | originator id | version | topic | SHA-256(state) )

over exactly the bytes the event store holds, starting from 32 zero bytes. Changing,
removing or moving any stored event changes every hash from there on, so comparing a
recomputed chain with the stored one (`porchlight audit verify`) finds the first event that
is not what was chained. The state enters through its own digest, which is also stored:
verify can then tell an event moved to another position from one altered in place.

The chain is a follower of the notification log (services/common/log_follower.py), run in
the relay process beside the relay: the request path never waits for it. Each page is
chained in one transaction that first takes an advisory lock and reads the last link, so a
repeated page (at-least-once) or a second relay process adds nothing twice.

Someone who can write the database could rewrite the events and the chain together; so
the chain's head is also published to Kafka (`porchlight.audit.v1`, contracts/audit.py)
every few seconds when it has moved, and verify checks its recomputed chain against those
published heads as well.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from eventsourcing.persistence import Notification

from contracts.audit import AuditHeadV1
from services.common.kafka import create_producer, ensure_topics
from services.common.log_follower import DATABASE_OUTAGES, LogFollower

log = logging.getLogger(__name__)

GENESIS = bytes(32)
FOLLOWER_NAME = "audit_chain"
OUTAGES = (KafkaError, *DATABASE_OUTAGES)


def state_digest(state: bytes) -> bytes:
    return hashlib.sha256(state).digest()


def link(prev: bytes, position: int, originator_id: uuid.UUID, version: int, topic: str, digest: bytes) -> bytes:
    """One link of the chain. Fixed-width fields and a length-prefixed topic: no two
    different events can serialise to the same bytes."""
    topic_bytes = topic.encode()
    return hashlib.sha256(
        prev + struct.pack(">q", position) + originator_id.bytes + struct.pack(">qI", version, len(topic_bytes))
        + topic_bytes + digest
    ).digest()


@dataclass(frozen=True)
class Link:
    position: int
    hash: bytes
    prev: bytes
    state_digest: bytes


def chain(prev: bytes, notifications: Sequence[Notification]) -> list[Link]:
    links = []
    for n in notifications:
        digest = state_digest(n.state)
        current = link(prev, n.id, n.originator_id, n.originator_version, n.topic, digest)
        links.append(Link(n.id, current, prev, digest))
        prev = current
    return links


async def last_link(db: asyncpg.Pool | asyncpg.Connection) -> tuple[int, bytes]:
    row = await db.fetchrow("SELECT position, hash FROM audit_chain ORDER BY position DESC LIMIT 1")
    return (row["position"], bytes(row["hash"])) if row else (0, GENESIS)


class AuditChain:
    """Chains each page of the log as it commits, and publishes the head every `head_seconds`."""

    def __init__(self, recorder: Any, pool: asyncpg.Pool, bootstrap_servers: str, topic: str, *,
                 head_seconds: float = 5.0, page_size: int = 1000, gather_seconds: float = 0.0) -> None:
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._head_seconds = head_seconds
        self.follower = LogFollower(recorder, pool, FOLLOWER_NAME, page_size=page_size, outages=OUTAGES,
                                   gather_seconds=gather_seconds)
        self.published = 0  # the position of the last head published
        self._producer: AIOKafkaProducer | None = None

    async def run(self) -> None:
        """Chain and publish until cancelled; both back off from outages rather than end."""
        log.info("audit chain following the log (position stored as %r), heads to %s", FOLLOWER_NAME, self._topic)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.follower.follow(self.chain_page))
                tasks.create_task(self._publish_heads())
        finally:
            await self.close()

    async def chain_page(self, page: Sequence[Notification]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('porchlight-audit-chain'))")
            position, prev = await last_link(conn)
            links = chain(prev, [n for n in page if n.id > position])  # a repeated page adds nothing
            if links:
                await conn.copy_records_to_table(
                    "audit_chain", records=[(x.position, x.hash, x.prev, x.state_digest) for x in links],
                    columns=["position", "hash", "prev", "state_digest"],
                )

    async def publish_head(self) -> AuditHeadV1 | None:
        """Publish the current head if it moved since the last one; the head, or None."""
        position, current = await last_link(self._pool)
        if position <= self.published:
            return None
        head = AuditHeadV1(position=position, hash=current.hex(), at=datetime.now(timezone.utc))
        if self._producer is None:
            producer = create_producer(self._bootstrap_servers)
            await producer.start()
            self._producer = producer
        try:
            await self._producer.send_and_wait(self._topic, head.model_dump_json().encode(), key=head.key)
        except OUTAGES:
            await self.close()  # a fresh connection next time
            raise
        self.published = position
        return head

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except OUTAGES as exc:  # its broker is gone: nothing to flush to
                log.debug("audit head producer did not stop cleanly: %s", exc)

    async def _publish_heads(self) -> None:
        topic_checked = False
        while True:
            await asyncio.sleep(self._head_seconds)
            try:
                if not topic_checked:  # migrate creates it; a memory broker restarted since has not
                    await ensure_topics(self._bootstrap_servers, [self._topic])
                    topic_checked = True
                await self.publish_head()
            except OUTAGES as exc:  # the next round tries again; the chain itself is in the database
                log.warning("audit chain: cannot publish the head to %s: %s: %s", self._topic, type(exc).__name__, exc)
