"""The notifier against a real broker, PostgreSQL and SMTP server, run in-process.

Each test has its own topics and consumer group; "a restart after the broker forgot
our offsets" is a fresh group on the same topic, which is what Tansu does on restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer

from contracts import AccessEventV1, Actor
from contracts.access import TOKEN_CLAIMED, TYPE_HEADER, InviteSent, InviteSentV1, Sender, event_id_for
from services.common import tokens
from services.common.kafka import create_producer
from services.common.settings import NotifierSettings
from services.notifier.ledger import delivery_id_for
from services.notifier.main import run
from tests.conftest import SECRET_KEY
from tests.helpers import dead_letters, poll_until, unique, wait_for_dead_letter

LINK = re.compile(r"https?://\S+/claim/[A-Za-z0-9_.-]+")


def notifier_settings(base_env: dict[str, str], smtp_port: int, **overrides: str) -> NotifierSettings:
    env = {**base_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "NOTIFIER_GROUP_ID": unique("notifier")}
    fields = {k.lower(): v for k, v in env.items() if k.lower() in NotifierSettings.model_fields}
    return NotifierSettings(**fields, **overrides)


@asynccontextmanager
async def running(settings: NotifierSettings) -> AsyncIterator[asyncio.Task]:
    task = asyncio.create_task(run(settings))
    try:
        yield task
    finally:
        if task.done():
            task.result()  # surface a crash rather than a confusing timeout
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def recording(bootstrap: str, topic: str) -> AsyncIterator[list[dict]]:
    """Every message on `topic` from the start, decoded, appended as it arrives."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    seen: list[dict] = []

    async def pump() -> None:
        async for record in consumer:
            seen.append({"key": record.key, "raw": record.value, **json.loads(record.value)})

    task = asyncio.create_task(pump())
    try:
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


def invite_sent(workspace: str, email: str, *, name: str = "Ana Traveler", logo: str | None = None) -> InviteSentV1:
    invitation_id, account_id = uuid.uuid4(), uuid.uuid4()
    return InviteSentV1(
        event_id=event_id_for(invitation_id, 1),
        workspace=workspace,
        account_id=account_id,
        aggregate_id=invitation_id,
        aggregate_version=1,
        position=1,
        occurred_at=datetime.now(timezone.utc),
        actor=Actor(kind="staff", id="staff-42"),
        data=InviteSent(
            workspace=workspace,
            account_id=account_id,
            email=email,
            name=name,
            nonce=tokens.new_nonce(),
            expires_at=datetime.now(timezone.utc) + timedelta(days=7),
            channels=["email"],
            method="manual",
            sender=Sender(
                workspace_name="Pride Travelers", sender_name="Pride Travelers", logo_url=logo, brand_color="#C2185B"
            ),
        ),
    )


def expected_token(event: InviteSentV1) -> str:
    return tokens.make_token(SECRET_KEY.encode(), tokens.CLAIM, event.aggregate_id, event.data.nonce)


async def publish(bootstrap: str, topic: str, *messages: AccessEventV1 | tuple) -> None:
    """Envelopes as the relay publishes them (with the `type` header); tuples as they are:
    (key, value) without headers, as an older producer or a stranger would, or (key, value, headers)."""
    producer = create_producer(bootstrap)
    await producer.start()
    try:
        for m in messages:
            if isinstance(m, AccessEventV1):
                key, value, headers = m.key, m.model_dump_json().encode(), m.headers
            else:
                key, value, headers = (*m, [])[:3]
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def raw(event: AccessEventV1, *, type_header: bool = True, **changes) -> tuple[bytes, bytes, list]:
    """`event` as a raw message with `changes` made to its JSON body (`data__x` changes data's `x`)."""
    body = event.model_dump(mode="json")
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = body
        for parent in parents:
            target = target[parent]
        if value is DROP:
            del target[leaf]
        else:
            target[leaf] = value
    return event.key, json.dumps(body).encode(), [(TYPE_HEADER, body["type"].encode())] if type_header else []


DROP = object()


def outcomes_for(seen: list[dict], event: AccessEventV1) -> list[dict]:
    return [o for o in seen if o["event_id"] == str(event.event_id)]


async def test_invite_is_sent_once_with_branding_and_outcome(
    base_env, topic_names, smtp_server, pg_pool, kafka_bootstrap, caplog
):
    caplog.set_level(logging.DEBUG, logger="porchlight.notifier")
    settings = notifier_settings(base_env, smtp_server.port, public_base_url="http://portal.test:8000")
    ws = unique("ws")
    first = invite_sent(ws, f"{unique('ana')}@example.com", logo="https://cdn.example.com/pride.png")
    access = topic_names["access"]

    async with recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes:
        async with running(settings):
            await publish(kafka_bootstrap, access, first)
            [mail] = await smtp_server.wait_for(first.data.email)

            link = tokens.claim_link("http://portal.test:8000", ws, expected_token(first))
            assert mail.message["Subject"] == "Pride Travelers invited you to their client portal"
            assert mail.message["From"].addresses[0].display_name == "Pride Travelers"
            assert mail.message["Message-ID"] == f"<{delivery_id_for(first.event_id, 'email')}@porchlight.localhost>"
            text, html = mail.part("plain"), mail.part("html")
            assert LINK.findall(text) == [link]
            assert f'href="{link}"' in html
            assert "Welcome, Ana Traveler" in text and "Welcome, Ana Traveler" in html
            assert 'src="https://cdn.example.com/pride.png"' in html
            assert "background-color: #C2185B" in html

            [outcome] = await poll_until(lambda: _async(outcomes_for(outcomes, first)), what="the sent outcome")
            assert outcome["status"] == "sent" and outcome["attempt"] == 1 and outcome["channel"] == "email"
            assert outcome["delivery_id"] == str(delivery_id_for(first.event_id, "email"))
            assert outcome["key"] == str(first.account_id).encode()

            # The relay re-publishes; an event of another type and a malformed message pass by.
            second = invite_sent(ws, f"{unique('ben')}@example.com")
            claimed = AccessEventV1.model_validate(
                first.model_dump() | {"event_id": uuid.uuid4(), "type": TOKEN_CLAIMED, "data": {"at": "2030-01-01"}}
            )
            junk = (second.key, b'{"not": "an access event"}')
            await publish(kafka_bootstrap, access, first, claimed, junk, second)
            await smtp_server.wait_for(second.data.email)
            # Same partition (same key) and in order: the duplicate was handled before `second`.
            await poll_until(lambda: _async(len(outcomes_for(outcomes, first)) == 2), what="the re-published outcome")

        # A restart whose broker forgot the group's offsets reads the topic from the start.
        third = invite_sent(ws, f"{unique('cy')}@example.com")
        await publish(kafka_bootstrap, access, third)
        async with running(settings.model_copy(update={"notifier_group_id": unique("notifier")})):
            await smtp_server.wait_for(third.data.email)

    record, headers = await wait_for_dead_letter(kafka_bootstrap, topic_names["dlq"])
    assert (record.key, record.value) == junk
    assert headers["dlq-consumer"] == "notifier" and headers["dlq-topic"] == access
    assert len(smtp_server.recorder.to(first.data.email)) == 1
    assert len(smtp_server.recorder.to(second.data.email)) == 1
    assert len(smtp_server.recorder.received) == 3
    repeats = outcomes_for(outcomes, first)
    assert {o["delivery_id"] for o in repeats} == {str(delivery_id_for(first.event_id, "email"))}
    assert all(o["status"] == "sent" and o["attempt"] == 1 for o in repeats)
    assert not [o for o in outcomes if o["event_id"] == str(claimed.event_id)]

    row = await pg_pool.fetchrow("SELECT status, attempt FROM notifier_deliveries WHERE event_id = $1", first.event_id)
    assert tuple(row) == ("sent", 1)
    for event in (first, second, third):
        token = expected_token(event)
        assert token not in caplog.text
        assert not [o for o in outcomes if token.encode() in o["raw"]]
    # A line per delivery at DEBUG (a batch's summary at INFO); the repeats (re-publish, restart)
    # say nothing was sent again.
    sent, *repeats = [r for r in caplog.records if f"delivery event_id={first.event_id}" in r.getMessage()]
    assert sent.levelno == logging.DEBUG and "status=sent" in sent.getMessage() and "repeat=False" in sent.getMessage()
    assert repeats and all(r.levelno == logging.DEBUG and "repeat=True" in r.getMessage() for r in repeats)
    assert any(r.levelno == logging.INFO and "deliveries: sent 1" in r.getMessage() for r in caplog.records)


async def _async(value):
    return value


pytestmark = pytest.mark.timeout(90)


async def test_invite_without_name_is_sent_and_broken_invites_are_dead_lettered(
    base_env, smtp_server, kafka_bootstrap, topic_names
):
    ws = unique("ws")
    nameless = invite_sent(ws, f"{unique('nn')}@example.com")
    nameless = nameless.model_copy(update={"data": nameless.data.model_copy(update={"name": None})})
    key = nameless.key  # one partition for all, so each message below is handled before `nameless`
    no_nonce = raw(invite_sent(ws, f"{unique('br')}@example.com"), data__nonce=DROP)
    # Routed by the body's type (no header), then refused by the InviteSent contract.
    bad_expiry = raw(invite_sent(ws, f"{unique('be')}@example.com"), type_header=False, data__expires_at="soon")
    # A type this notifier does not know, from an Actor with a field it does not know: passes by.
    future = raw(nameless, type="SomethingInvented", event_id=str(uuid.uuid4()), actor__team="night shift",
                 data={"colour": "teal"})
    async with running(notifier_settings(base_env, smtp_server.port)):
        await publish(
            kafka_bootstrap, topic_names["access"],
            *((key, value, headers) for _, value, headers in (no_nonce, bad_expiry, future)), nameless,
        )
        [mail] = await smtp_server.wait_for(nameless.data.email)
        assert "Welcome!" in mail.part("plain")
        parked = await dead_letters(kafka_bootstrap, topic_names["dlq"])
    assert [value for _, value, _ in parked] == [no_nonce[1], bad_expiry[1]]
    assert all(headers["dlq-consumer"] == "notifier" for _, _, headers in parked)
    assert "nonce" in parked[0][2]["dlq-reason"] and "expires_at" in parked[1][2]["dlq-reason"]
    assert smtp_server.recorder.received == [mail]
