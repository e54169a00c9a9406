"""FastStream batch subscribers that wait for records only in aiokafka's `getmany`.

Kept apart from services/common/kafka.py so that processes without a FastStream subscriber
(the API, the relay) do not import FastStream.
"""

from __future__ import annotations

import time
from itertools import chain

import anyio
from aiokafka import AIOKafkaConsumer
from faststream.kafka.subscriber.usecase import BatchSubscriber


def prompt_batches(subscriber):
    """Have a FastStream batch subscriber wait for records only in aiokafka's `getmany`.

    FastStream 0.7's batch loop sleeps another `batch_timeout_ms` after a `getmany` that timed
    out empty, and records that arrive meanwhile wait out the sleep: on the email path that
    put up to twice `kafka_fetch_max_wait_ms` between the broker having an invite and the
    notifier seeing it. `getmany` already waits `timeout_ms` for records, so the sleep is kept
    only after one that came back early and empty (a consumer stopping), against a busy loop.
    """
    if type(subscriber) is BatchSubscriber:
        subscriber.__class__ = PromptBatchSubscriber
    return subscriber


_clock = time.monotonic  # the tests' seam


class PromptBatchSubscriber(BatchSubscriber):
    __slots__ = ()

    async def get_msg(self, consumer: AIOKafkaConsumer) -> tuple:
        started = _clock()
        messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
        if messages:
            return tuple(chain.from_iterable(messages.values()))
        left = self.batch_timeout_ms / 1000 - (_clock() - started)
        if left > self.batch_timeout_ms / 2000:
            await anyio.sleep(left)
        return ()
