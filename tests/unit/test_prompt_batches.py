"""The notifier's batch subscriber waits for records in aiokafka's getmany only: FastStream's
own loop slept as long again after an empty getmany, and an invite arriving meanwhile waited
out that sleep on top of the broker's fetch wait."""

from __future__ import annotations

import anyio
import pytest
from faststream.kafka import KafkaBroker

from services.common import prompt_batches as module
from services.common.prompt_batches import PromptBatchSubscriber, prompt_batches


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Consumer:
    """getmany as aiokafka's: records, or nothing after `waits` seconds of the clock."""

    def __init__(self, clock: Clock, records: dict | None, waits: float) -> None:
        self.clock, self.records, self.waits = clock, records or {}, waits
        self.calls: list[dict] = []

    async def getmany(self, timeout_ms: int, max_records: int | None) -> dict:
        self.calls.append({"timeout_ms": timeout_ms, "max_records": max_records})
        self.clock.now += self.waits
        return self.records


@pytest.fixture
def subscriber():
    broker = KafkaBroker("127.0.0.1:1")
    sub = broker.subscriber("t", group_id="g", batch=True, batch_timeout_ms=50, max_records=7)
    sub(lambda body: None)
    return prompt_batches(sub)


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", sleep)
    return slept


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(module, "_clock", c)
    return c


def test_only_batch_subscribers_change_class():
    broker = KafkaBroker("127.0.0.1:1")
    one = broker.subscriber("t", group_id="g")
    assert type(prompt_batches(one)) is not PromptBatchSubscriber
    assert type(prompt_batches(broker.subscriber("t", group_id="g", batch=True))) is PromptBatchSubscriber


async def test_records_come_back_as_one_tuple_with_getmany_bounds(subscriber, clock, sleeps):
    consumer = Consumer(clock, {"p0": ["a", "b"], "p1": ["c"]}, waits=0.001)
    assert await subscriber.get_msg(consumer) == ("a", "b", "c")
    assert consumer.calls == [{"timeout_ms": 50, "max_records": 7}]
    assert sleeps == []


async def test_an_empty_getmany_that_waited_its_timeout_is_not_followed_by_a_sleep(subscriber, clock, sleeps):
    assert await subscriber.get_msg(Consumer(clock, None, waits=0.050)) == ()
    assert sleeps == []


async def test_an_empty_getmany_that_came_back_at_once_sleeps_the_rest_of_the_timeout(subscriber, clock, sleeps):
    assert await subscriber.get_msg(Consumer(clock, None, waits=0.0)) == ()
    assert sleeps == [pytest.approx(0.050)]


def test_the_notifier_subscribes_prompt_batches(monkeypatch):
    from services.common.settings import NotifierSettings
    from services.notifier.main import create_notifier

    settings = NotifierSettings(database_url="postgresql://u@127.0.0.1/db", kafka_bootstrap_servers="127.0.0.1:1",
                                porchlight_secret_key="k" * 40)
    broker, _ = create_notifier(settings)
    assert [type(s) for s in broker.subscribers] == [PromptBatchSubscriber]
