"""Messages no consumer can ever handle go to the dead-letter topic instead of blocking.

NACK_ON_ERROR retries by seeking back, which is right for a database outage and wrong
for a message that fails validation: it would fail again forever (measured: ~1,000
retries a second) and hold up every later event of its partition. Such a message is
published, unchanged and with the same key, to `porchlight.dlq.v1` with its origin and
the reason in headers (API.md), and only then acknowledged. If that publish fails, the
error propagates and the message is retried like any other failure.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fast_depends.exceptions import ValidationError as ArgumentsInvalid
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

log = logging.getLogger(__name__)

# Failures that no retry can fix: the bytes are not a message we understand. FastStream
# reports a body that fails the handler's model as fast_depends' ValidationError.
UNPROCESSABLE = (ValidationError, ArgumentsInvalid, json.JSONDecodeError, UnicodeDecodeError)


def dead_letter_middleware(broker: KafkaBroker, dlq_topic: str, consumer: str):
    class DeadLetters(BaseMiddleware):
        async def consume_scope(self, call_next, msg) -> Any:
            try:
                return await call_next(msg)
            except UNPROCESSABLE as exc:
                record = msg.raw_message
                reason = f"{type(exc).__name__}: {exc}"[:2000]
                await broker.publish(
                    record.value,
                    topic=dlq_topic,
                    key=record.key,
                    headers={
                        "dlq-consumer": consumer,
                        "dlq-topic": record.topic,
                        "dlq-partition": str(record.partition),
                        "dlq-offset": str(record.offset),
                        "dlq-reason": reason,
                    },
                )
                log.error(
                    "dead-lettered %s[%d]@%d to %s: %s",
                    record.topic, record.partition, record.offset, dlq_topic, reason.splitlines()[0],
                )
                return None

    return DeadLetters
