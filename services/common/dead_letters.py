"""Every consumer's one error policy: redeliver after a backoff, or park on the dead-letter topic.

A failed message is classified (consumer_errors.py). One no retry can fix is published,
unchanged and with the same key, to `porchlight.dlq.v1` with its origin and the reason in
headers (contracts/dlq.py), and only then acknowledged. Any other is nacked: the offset is
not committed and the consumer seeks back, so the message comes again and the later ones of
its partition (one account's events) wait behind it, in order. Before the nack the handler's
slot waits a backoff (exponential, jittered, capped) so a failure is not a tight loop of
seeks; after `attempts` tries that count, the message is dead-lettered too, with the count.
If the dead-letter publish itself fails, the message is nacked like any failure: parked
nowhere yet, it must not be acknowledged.

Shutdown never waits on a backoff: `stop_consuming` sets the guard's stop event before it
stops the broker, the wait ends at once and the message is nacked, never acknowledged, so
it comes again after the restart. A handler still running is awaited (FastStream's
graceful stop), so nothing is left half-done by the stop either.

Tries are counted in memory per (topic, partition, offset). A restart or a rebalance starts
the count again, which can only delay giving up, never lose a message.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from faststream import BaseMiddleware
from faststream.exceptions import HandlerException, NackMessage
from faststream.kafka import KafkaBroker

from contracts import dlq
from services.common.consumer_errors import Category, Verdict, classify, log_summary, reason
from services.common.metrics import CONSUMER_RETRIES, DEAD_LETTERS
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[bool]]  # True when the dependency answers
_GUARD = "consumer_guard"  # key of the ConsumerGuard in the broker's context
RECORD_FAILURES = "record_failures"  # key of the RecordFailures in the broker's context
MAX_TRACKED = 10_000  # messages whose tries are remembered; the oldest is forgotten first
POLL_SECONDS = 0.25  # how soon a backoff notices a subscriber stopped without stop_consuming


@dataclass
class RetryPolicy:
    attempts: int = CommonSettings.model_fields["consumer_retry_attempts"].default
    delay: float = CommonSettings.model_fields["consumer_retry_delay_seconds"].default
    max_delay: float = CommonSettings.model_fields["consumer_retry_max_delay_seconds"].default

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> RetryPolicy:
        return cls(
            settings.consumer_retry_attempts, settings.consumer_retry_delay_seconds,
            settings.consumer_retry_max_delay_seconds,
        )

    def backoff(self, tries: int) -> float:
        # Jitter, so consumers that failed together on one outage don't all come back at once.
        return min(self.max_delay, self.delay * 2 ** (tries - 1)) * random.uniform(0.5, 1.0)


@dataclass
class _Tries:
    total: int = 0  # every failure: sets the backoff
    counted: int = 0  # failures toward the bound


@dataclass
class ConsumerGuard:
    """One broker's policy, dependency probes, stop event and tries per message."""

    policy: RetryPolicy
    probes: dict[str, Probe] = field(default_factory=dict)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _tries: OrderedDict[tuple, _Tries] = field(default_factory=OrderedDict)

    def tries(self, key: tuple) -> _Tries:
        found = self._tries.setdefault(key, _Tries())
        self._tries.move_to_end(key)
        while len(self._tries) > MAX_TRACKED:
            self._tries.popitem(last=False)
        return found

    def forget(self, key: tuple) -> None:
        self._tries.pop(key, None)

    async def counts(self, verdict: Verdict) -> bool:
        """Does this failure count toward the bound? An outage only if its dependency answers."""
        if verdict.category is not Category.OUTAGE:
            return True
        if verdict.dependency is None:
            probes = list(self.probes.values())  # unknown source: every dependency must answer
        else:
            probes = [self.probes[verdict.dependency]] if verdict.dependency in self.probes else []
        return bool(probes) and all(await asyncio.gather(*(_ask(p) for p in probes)))

    async def pause(self, seconds: float, consuming: Callable[[], bool]) -> None:
        """Sleep, unless and until the process starts stopping.

        `stop_consuming` ends the pause at once. A plain `broker.stop()` is noticed too,
        within POLL_SECONDS: FastStream gives middlewares no stop hook, but a subscriber's
        stop clears its `running` flag before it waits for the handler in progress.
        """
        deadline = asyncio.get_running_loop().time() + seconds
        while consuming() and (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                await asyncio.wait_for(self.stopping.wait(), min(left, POLL_SECONDS))
                return
            except TimeoutError:
                pass


async def _ask(probe: Probe) -> bool:
    try:
        return bool(await probe())
    except Exception:  # noqa: BLE001 - a probe that fails is a dependency that did not answer
        return False


def dead_letter_middleware(
    broker: KafkaBroker,
    dlq_topic: str,
    consumer: str,
    *,
    settings: CommonSettings | None = None,
    probes: Mapping[str, Probe] | None = None,
):
    """The middleware for every subscriber of `broker` (whose ack policy must be NACK_ON_ERROR).

    Probes and settings known only once the process runs can be given later, `configure`.
    """
    guard = ConsumerGuard(RetryPolicy.from_settings(settings) if settings else RetryPolicy(), dict(probes or {}))
    broker.context.set_global(_GUARD, guard)
    failures = RecordFailures(broker, dlq_topic, consumer, guard)
    broker.context.set_global(RECORD_FAILURES, failures)

    class DeadLetters(BaseMiddleware):
        # In __aexit__ rather than consume_scope: it also sees what fails before the handler
        # runs (a header that is not UTF-8 fails in FastStream's parser).
        async def after_processed(self, exc_type=None, exc_val=None, exc_tb=None) -> bool | None:
            record = self.msg
            if isinstance(record, tuple):  # a batch: its handler settles each record (RecordFailures)
                return False
            if exc_val is None:
                guard.forget(_key(record))
                return False
            if not isinstance(exc_val, Exception) or isinstance(exc_val, HandlerException):
                return False  # cancelled, or the handler chose ack/nack/reject itself
            subscriber = self.context.get_local("handler_")
            await failures.settle(record, exc_val, lambda: getattr(subscriber, "running", True))
            return True  # acknowledged: it is on the dead-letter topic now

    return DeadLetters


def _key(record) -> tuple:
    return (record.topic, record.partition, record.offset)


class RecordFailures:
    """The policy for one failed record: park it on the dead-letter topic, or back off and nack.

    The middleware applies it to every single-message subscriber. A batch subscriber's
    handler gets it from the context (`RECORD_FAILURES`) and applies it to the one record of
    its batch that failed: `settle` returns once that record is parked (go on with the next),
    or raises NackMessage after the backoff (the whole batch comes again; what was applied
    before it is skipped as already applied).
    """

    def __init__(self, broker: KafkaBroker, dlq_topic: str, consumer: str, guard: ConsumerGuard) -> None:
        self.broker, self.dlq_topic, self.consumer, self.guard = broker, dlq_topic, consumer, guard

    async def settle(self, record, exc: Exception, consuming: Callable[[], bool]) -> None:
        guard, consumer, key = self.guard, self.consumer, _key(record)

        def stopping() -> bool:
            return guard.stopping.is_set() or not consuming()

        verdict, tries = classify(exc), guard.tries(key)
        tries.total += 1
        if verdict.retried and not stopping() and await guard.counts(verdict):
            tries.counted += 1
        if not verdict.retried or tries.counted >= guard.policy.attempts:
            try:
                await self._publish_dead_letter(record, verdict, exc, tries.total)
            except Exception as publish_failed:  # noqa: BLE001 - parked nowhere yet: retry the message
                exc, verdict = publish_failed, classify(publish_failed)
            else:
                guard.forget(key)
                return
        delay = guard.policy.backoff(tries.total)
        CONSUMER_RETRIES.labels(consumer, verdict.category).inc()
        log.warning(
            "%s: %s[%d]@%d failed (%s, try %d, %d of %d counted), redelivering in %.1fs: %s",
            consumer, record.topic, record.partition, record.offset, verdict.category, tries.total,
            tries.counted, guard.policy.attempts, delay, log_summary(exc),
            exc_info=exc if verdict.category is Category.UNEXPECTED and tries.total == 1 else None,
        )
        await guard.pause(delay, consuming)
        if stopping():
            log.info(
                "%s: stopping; %s[%d]@%d is left for redelivery", consumer, record.topic, record.partition, record.offset
            )
        raise NackMessage() from exc

    async def _publish_dead_letter(self, record, verdict: Verdict, exc: Exception, attempts: int) -> None:
        consumer = self.consumer
        why = reason(exc)
        if verdict.retried:
            why = f"{why[:1950]} (gave up after {attempts} attempts)"
        await self.broker.publish(
            record.value,
            topic=self.dlq_topic,
            key=record.key,
            headers={
                dlq.CONSUMER: consumer,
                dlq.TOPIC: record.topic,
                dlq.PARTITION: str(record.partition),
                dlq.OFFSET: str(record.offset),
                dlq.REASON: why,
                dlq.CATEGORY: str(verdict.category),
                dlq.ATTEMPTS: str(attempts),
            },
        )
        DEAD_LETTERS.labels(consumer, verdict.category).inc()
        log.error(
            "%s: dead-lettered %s[%d]@%d to %s (%s, %d attempts): %s",
            consumer, record.topic, record.partition, record.offset, self.dlq_topic, verdict.category,
            attempts, log_summary(exc),
        )


def configure(
    broker: KafkaBroker, *, settings: CommonSettings | None = None, probes: Mapping[str, Probe] | None = None
) -> None:
    """Give the guard of `broker` what a process knows only once it runs: settings and probes."""
    guard: ConsumerGuard | None = broker.context.get(_GUARD)
    if guard is None:
        raise RuntimeError("the broker has no dead_letter_middleware")
    if settings is not None:
        guard.policy = RetryPolicy.from_settings(settings)
    guard.probes.update(probes or {})


async def stop_consuming(*brokers: KafkaBroker) -> None:
    """Stop `brokers` without waiting for a backoff: end every pause first, then stop."""
    for broker in brokers:
        guard: ConsumerGuard | None = broker.context.get(_GUARD)
        if guard is not None:
            guard.stopping.set()
    await asyncio.gather(*(broker.stop() for broker in brokers))
