"""`porchlight audit verify`: recompute the audit chain from the event store and say where it breaks.

Walks the notification log and the `audit_chain` table side by side, recomputing each link
(services/common/audit_chain.py), and reports the first event that is not what was chained:

    altered    the event at this position is not the one chained there
    reordered  the event at this position holds the stored state chained at another one
    missing    the chain has an event at this position; the event store no longer does
    inserted   the event store has an event here that was never chained, below the chain's head
    rewritten  the recomputed chain disagrees with a head published to Kafka although the
               `audit_chain` table agrees: the events and the table were rewritten together
               (the altered event lies after the last head that matched, up to this one)

and then stops: every later link depends on this one. Exit status 0 when intact, 1 otherwise.
Events after the chain's head (the chain follower runs behind the log by a moment) are
recomputed for the published heads only and counted as not chained yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import asyncpg
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from contracts.audit import AuditHeadV1
from services.common.audit_chain import GENESIS, link, state_digest


@dataclass
class Finding:
    kind: str
    position: int
    detail: str


@dataclass
class Report:
    finding: Finding | None = None
    chained: int = 0  # events compared with their link
    chain_head: int = 0  # the position of the last of them
    unchained: int = 0  # events after the chain's head
    last_position: int = 0
    heads_checked: int = 0
    heads_note: str | None = None  # why published heads were not (all) checked
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.finding is None


class HeadsUnavailable(RuntimeError):
    """The published heads could not be read (no broker, no topic)."""


async def read_heads(bootstrap_servers: str, topic: str, timeout_s: float = 10.0) -> list[AuditHeadV1]:
    """Every head on `topic`, read from the start by a client without a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None,
                                request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
        await consumer.topics()  # metadata of every topic, without making the broker create this one
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise HeadsUnavailable(f"the broker has no topic {topic}")
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        heads = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if asyncio.get_running_loop().time() > deadline:
                raise HeadsUnavailable(f"timed out reading {topic}")
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for records in batch.values():
                for record in records:
                    try:
                        heads.append(AuditHeadV1.model_validate_json(record.value))
                    except ValidationError:
                        continue  # not a head: nothing to check it against
        return sorted(heads, key=lambda h: h.position)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise HeadsUnavailable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        await consumer.stop()


async def _events(recorder: Any, page_size: int) -> AsyncIterator[Any]:
    position = 0
    while page := await asyncio.to_thread(recorder.select_notifications, position + 1, page_size):
        for notification in page:
            yield notification
        position = page[-1].id


async def _links(pool: asyncpg.Pool, page_size: int) -> AsyncIterator[asyncpg.Record]:
    position = 0
    while rows := await pool.fetch(
        "SELECT position, hash, state_digest FROM audit_chain WHERE position > $1 ORDER BY position LIMIT $2",
        position, page_size,
    ):
        for row in rows:
            yield row
        position = rows[-1]["position"]


async def verify_log(recorder: Any, pool: asyncpg.Pool, heads: list[AuditHeadV1] | None,
                     page_size: int = 2000) -> Report:
    """Recompute the chain over the event store; compare with `audit_chain` and with `heads`."""
    report = Report()
    heads = heads or []
    events, links = _events(recorder, page_size), _links(pool, page_size)
    event, chained = await anext(events, None), await anext(links, None)
    prev, matched_head, next_head = GENESIS, 0, 0
    while event is not None or chained is not None:
        if chained is not None and (event is None or event.id > chained["position"]):
            p = chained["position"]
            return _found(report, "missing", p, f"the chain has an event at position {p}; the event store does not")
        if chained is not None and event.id < chained["position"]:
            return _found(report, "inserted", event.id, f"the event store has an event at position {event.id} "
                          f"that was never chained (the chain goes on at {chained['position']})")
        digest = state_digest(event.state)
        current = link(prev, event.id, event.originator_id, event.originator_version, event.topic, digest)
        if chained is not None:
            if bytes(chained["hash"]) != current:
                return await _mismatch(report, pool, event.id, digest, bytes(chained["state_digest"]))
            report.chained += 1
            report.chain_head = event.id
            chained = await anext(links, None)
        else:
            report.unchained += 1
        while next_head < len(heads) and heads[next_head].position <= event.id:
            head = heads[next_head]
            if head.position < event.id:
                return _found(report, "missing", head.position, f"the head published at {head.at:%Y-%m-%d %H:%M:%S} UTC "
                              f"names position {head.position}, which the event store no longer has")
            if head.hash != current.hex():
                return _found(report, "rewritten", head.position, _rewritten(matched_head, head))
            matched_head = head.position
            report.heads_checked += 1
            next_head += 1
        prev, report.last_position = current, event.id
        event = await anext(events, None)
    if next_head < len(heads):
        head = heads[next_head]
        return _found(report, "missing", head.position, f"the head published at {head.at:%Y-%m-%d %H:%M:%S} "
                      f"UTC names position {head.position}, beyond the end of the log ({report.last_position}): "
                      "events were removed from its end")
    return report


def _found(report: Report, kind: str, position: int, detail: str) -> Report:
    report.finding = Finding(kind, position, detail)
    return report


async def _mismatch(report: Report, pool: asyncpg.Pool, position: int, digest: bytes, chained_digest: bytes) -> Report:
    if digest == chained_digest:
        return _found(report, "altered", position, f"the event at position {position} does not match its link: "
                      "its originator, version or topic is not what was chained (its state bytes are), or the "
                      "audit_chain row itself was changed")
    moved_from = await pool.fetchval(
        "SELECT position FROM audit_chain WHERE state_digest = $1 AND position <> $2 ORDER BY position LIMIT 1",
        digest, position,
    )
    if moved_from is not None:
        return _found(report, "reordered", position, f"the event at position {position} holds the stored state "
                      f"chained at position {moved_from}")
    return _found(report, "altered", position, f"the stored state of the event at position {position} is not "
                  "the one chained there")


def _rewritten(matched: int, head: AuditHeadV1) -> str:
    return (f"the recomputed chain at position {head.position} differs from the head published at "
            f"{head.at:%Y-%m-%d %H:%M:%S} UTC, although the audit_chain table agrees with the events: events and "
            f"chain were rewritten together; an event after position {matched} up to {head.position} was changed")


async def run_verify(database_url: str, bootstrap_servers: str | None, topic: str) -> Report:
    """Composition root of the command."""
    from services.common.database import create_pool, eventsourcing_env
    from services.invite_service.application import PortalAccess

    heads, note = None, None
    if bootstrap_servers:
        try:
            heads = await read_heads(bootstrap_servers, topic)
        except HeadsUnavailable as exc:
            note = f"published heads not checked: {exc}"
    else:
        note = "published heads not checked (--no-heads)"
    app = await asyncio.to_thread(PortalAccess, eventsourcing_env(database_url))
    pool = await create_pool(database_url, max_size=2)
    try:
        report = await verify_log(app.recorder, pool, heads)
    finally:
        await pool.close()
        app.close()
    report.heads_note = note
    return report


def verify(
    heads: Annotated[bool, typer.Option(help="Also check against the chain heads published to Kafka")] = True,
) -> None:
    """Recompute the audit chain from the event store; report the first altered, missing or moved event."""
    from deploy.cli import _logging, _settings
    from services.common.settings import CommonSettings

    settings = _settings(CommonSettings)
    _logging(settings, "audit")
    report = asyncio.run(run_verify(settings.database_url, settings.kafka_bootstrap_servers if heads else None,
                                    settings.audit_topic))
    if report.heads_note:
        typer.secho(report.heads_note, fg="yellow", err=True)
    if report.finding is not None:
        f = report.finding
        typer.secho(f"{f.kind.upper()} at position {f.position}: {f.detail}", fg="red")
        typer.echo(f"({report.chained} events verified before it)")
        raise typer.Exit(1)
    typer.secho(f"intact: {report.chained} events chained up to position {report.chain_head}, "
                f"{report.heads_checked} published heads matched"
                + (f", {report.unchained} events not chained yet" if report.unchained else ""), fg="green")
