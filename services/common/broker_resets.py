"""A broker that lost what it acknowledged: how the relay tells, and what it records.

Kafka's acknowledgement is only as good as the broker's storage. The embedded broker keeps
nothing across a restart, and a real cluster can lose a topic or the tail of a partition;
either way the relay's stored position says "published" for events nobody can read any
more. The relay remembers, per partition, the highest offset the broker acknowledged
(`AckedOffsets`, kept in PostgreSQL so a relay restart still knows it). An ack at or below
it, or a partition that ends at or below it, means the log behind it is gone: the relay
records a reset here (`broker_resets`) and publishes the notification log again from the
start. Consumers watch the reset epoch and read their partitions again from the beginning
(reset_watcher.py); their ledgers make the repeats harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.common.log_follower import Db


class AckedOffsets:
    """What the broker acknowledged to one relay on one topic, per partition.

    `highest` is the highest offset acknowledged: a new message is appended above it, so an
    ack at or below it means the partition lost messages. `last_page` is the first offset
    the relay's latest page got on the partition, the bound for a partition's end: a broker
    may report the end as the base offset of its last record batch plus one (Tansu 0.6 does),
    which can be below `highest` but never at or below `last_page` unless messages were lost.
    """

    def __init__(self, relay: str, topic: str) -> None:
        self.relay = relay
        self.topic = topic
        self.highest: dict[int, int] = {}
        self.last_page: dict[int, int] = {}

    async def load(self, db: Db) -> None:
        rows = await db.fetch(
            "SELECT partition, acked_offset, last_page_offset FROM broker_acked_offsets WHERE relay = $1 AND topic = $2",
            self.relay, self.topic,
        )
        self.highest = {r["partition"]: r["acked_offset"] for r in rows}
        self.last_page = {r["partition"]: r["last_page_offset"] for r in rows}

    def loss_in_acks(self, lowest: dict[int, int]) -> str | None:
        """Why a page whose lowest acked offset per partition is `lowest` shows a loss, if it does."""
        for partition, offset in sorted(lowest.items()):
            before = self.highest.get(partition)
            if before is not None and offset <= before:
                return f"partition {partition} acknowledged offset {offset}, at or below {before} acknowledged before"
        return None

    def loss_in_ends(self, ends: dict[int, int] | None) -> str | None:
        """Why the topic's partition ends (None: no such topic) show a loss, if they do."""
        if not self.last_page:
            return None
        if ends is None:
            return "the topic is missing"
        for partition, before in sorted(self.last_page.items()):
            end = ends.get(partition)
            if end is None:
                return f"partition {partition} is missing"
            if end <= before:
                return f"partition {partition} ends at offset {end}, at or below offset {before} acknowledged before"
        return None

    async def advance(self, db: Db, lowest: dict[int, int], highest: dict[int, int]) -> None:
        """Remember a page's acks: per partition its lowest and highest offset."""
        if not highest:
            return
        partitions = sorted(highest)
        await db.execute(
            "INSERT INTO broker_acked_offsets (relay, topic, partition, acked_offset, last_page_offset) "
            "SELECT $1, $2, p, h, l FROM unnest($3::int[], $4::bigint[], $5::bigint[]) AS t(p, h, l) "
            "ON CONFLICT (relay, topic, partition) DO UPDATE "
            "SET acked_offset = EXCLUDED.acked_offset, last_page_offset = EXCLUDED.last_page_offset",
            self.relay, self.topic, partitions, [highest[p] for p in partitions], [lowest[p] for p in partitions],
        )
        self.highest.update(highest)
        self.last_page.update(lowest)

    async def forget(self, db: Db) -> None:
        """After a reset: the offsets belonged to a log that is gone."""
        self.highest, self.last_page = {}, {}
        await db.execute("DELETE FROM broker_acked_offsets WHERE relay = $1 AND topic = $2", self.relay, self.topic)


@dataclass(frozen=True)
class BrokerReset:
    epoch: int
    relay: str
    topic: str
    reason: str
    republish_through: int
    detected_at: datetime
    relay_position: int  # where the relay stands now

    @property
    def caught_up(self) -> bool:
        return self.relay_position >= self.republish_through

    def describe(self) -> str:
        """For /readyz: when, why, and whether the relay has re-published everything since."""
        at = self.detected_at.isoformat(timespec="seconds")
        if self.caught_up:
            return f"caught up after the broker reset at {at} ({self.reason})"
        return (
            f"republishing since the broker reset at {at} ({self.reason}): "
            f"relay at position {self.relay_position} of {self.republish_through}"
        )


async def record_reset(db: Db, relay: str, topic: str, reason: str, republish_through: int) -> int:
    """Record a reset; returns its epoch, which consumers watch."""
    return await db.fetchval(
        "INSERT INTO broker_resets (relay, topic, reason, republish_through) VALUES ($1, $2, $3, $4) RETURNING epoch",
        relay, topic, reason, republish_through,
    )


async def latest_reset(db: Db, topics: list[str]) -> BrokerReset | None:
    """The latest reset of any of `topics`, with where its relay stands now."""
    row = await db.fetchrow(
        "SELECT r.epoch, r.relay, r.topic, r.reason, r.republish_through, r.detected_at, "
        "coalesce(p.position, 0) AS relay_position "
        "FROM broker_resets r LEFT JOIN relay_positions p ON p.relay = r.relay "
        "WHERE r.topic = ANY($1::text[]) ORDER BY r.epoch DESC LIMIT 1",
        topics,
    )
    return BrokerReset(**dict(row)) if row is not None else None


async def reset_check(db: Db, topic: str) -> str:
    """The /readyz entry for `topic`: informational, since a reset delays email but stops nothing."""
    reset = await latest_reset(db, [topic])
    return "none recorded" if reset is None else reset.describe()
