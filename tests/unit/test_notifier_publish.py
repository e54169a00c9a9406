"""A consumed batch's outcomes are handed to the producer and the batch goes on; they are
marked published (the outbox's bookkeeping) only once the broker acknowledged them, so one
whose acknowledgement never comes is published again by the outbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

from services.common.settings import NotifierSettings
from services.notifier.consumer import Notifier
from services.notifier.ledger import Row


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.acks: list[asyncio.Future] = []

    async def send(self, topic, value, key=None, headers=None):
        self.sent.append((topic, value))
        ack = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


def _notifier() -> tuple[Notifier, Producer]:
    settings = NotifierSettings(database_url="postgresql://u@127.0.0.1/db", kafka_bootstrap_servers="127.0.0.1:1",
                                porchlight_secret_key="k" * 40)
    notifier = Notifier(settings, outcomes=None)
    notifier.producer = producer = Producer()
    return notifier, producer


def _row() -> Row:
    return Row(delivery_id=uuid.uuid4(), event_id=uuid.uuid4(), account_id=uuid.uuid4(), workspace="ws",
               channel="email", slot="client:email", provider="smtp", status="sent", attempt=1, error=None,
               held=None, updated_at=datetime.now(timezone.utc))


async def test_a_batch_does_not_wait_for_the_ack_and_marks_only_what_was_acknowledged():
    notifier, producer = _notifier()
    sent, repeat = _row(), _row()
    await notifier.publish([sent], [repeat], wait=False)  # returns with the acks still pending
    assert len(producer.sent) == 2 and notifier._to_mark == []
    for ack in producer.acks:
        ack.set_result(None)
    await notifier.published()
    assert notifier._to_mark == [sent]  # a repeat was marked when it was first published


async def test_an_outcome_the_broker_did_not_acknowledge_stays_unmarked_for_the_outbox():
    notifier, producer = _notifier()
    await notifier.publish([_row()], [], wait=False)
    producer.acks[0].set_exception(ConnectionError("broker gone"))
    await notifier.published()
    assert notifier._to_mark == []


async def test_waiting_publish_marks_before_it_returns():
    notifier, producer = _notifier()
    producer.send = _acknowledged_at_once(producer.send)
    row = _row()
    await notifier.publish([row], [])
    assert notifier._to_mark == [row]


def _acknowledged_at_once(send):
    async def sending(*args, **kwargs):
        ack = await send(*args, **kwargs)
        ack.set_result(None)
        return ack

    return sending
