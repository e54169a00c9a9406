"""Test helpers: unique names, polling with a deadline, an SMTP server that records mail."""

from __future__ import annotations

import asyncio
import email
import email.policy
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TypeVar

from aiosmtpd.controller import Controller

T = TypeVar("T")


def unique(prefix: str = "ws") -> str:
    """A name no other test uses, so tests share one database without truncating it."""
    return f"{prefix}-{secrets.token_hex(5)}"


async def poll_until(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Await `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""


@dataclass
class SmtpRecorder:
    """Handler for a real aiosmtpd server: keeps every message it accepts."""

    received: list[ReceivedMail] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.received if address in m.rcpt_tos]


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.recorder = SmtpRecorder()
        self.port = port
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    async def wait_for(self, address: str, count: int = 1, timeout: float = 20.0) -> list[ReceivedMail]:
        async def probe():
            found = self.recorder.to(address)
            return found if len(found) >= count else None

        return await poll_until(probe, timeout=timeout, what=f"{count} email(s) to {address}")


async def wait_for_dead_letter(bootstrap: str, dlq_topic: str, timeout: float = 20.0):
    """The first record on a dead-letter topic, with its headers decoded."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(dlq_topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=unique("dlq"))
    await consumer.start()
    try:
        async def first():
            batch = await consumer.getmany(timeout_ms=200)
            for record in (r for records in batch.values() for r in records):
                return record, {k: v.decode() for k, v in record.headers}
            return None

        return await poll_until(first, timeout=timeout, what=f"a record on {dlq_topic}")
    finally:
        await consumer.stop()


async def dead_letters(bootstrap: str, dlq_topic: str, timeout: float = 20.0) -> list[tuple[bytes | None, bytes, dict]]:
    """Every record on a dead-letter topic so far, as (key, value, headers): read up to the end
    offsets taken when called, so call it once the consumer is known to be past what it tests."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster's metadata, so the topic's partitions are known
        partitions = [TopicPartition(dlq_topic, p) for p in consumer.partitions_for_topic(dlq_topic) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[tuple[bytes | None, bytes, dict]] = []

        async def caught_up() -> bool:
            for tp, batch in (await consumer.getmany(*partitions, timeout_ms=200)).items():
                records.extend((r.key, r.value, {k: v.decode() for k, v in r.headers}) for r in batch)
            return all([await consumer.position(tp) >= end for tp, end in ends.items()])

        await poll_until(caught_up, timeout=timeout, interval=0, what=f"the end of {dlq_topic}")
        return records
    finally:
        await consumer.stop()


def wait_until(predicate: Callable[[], object], *, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """The synchronous `poll_until`, for tests that drive processes rather than coroutines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
