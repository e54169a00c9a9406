"""Access events a fetched batch at a time: one transaction for the whole batch.

The broker hands the subscriber every record a fetch returned (up to PROJECTOR_BATCH_MAX).
Each is parsed into its typed envelope and given to the same typed handler the one-message
subscriber would route it to (status_list.HANDLERS), all inside `Projector.batch`: one
connection, one transaction, one update of the projection's position, one commit. Per
event that saves a pool checkout, a BEGIN and a COMMIT, and the position row's update.

If anything in the batch fails (a message that does not parse, a gap to repair, the
database), the transaction rolls back and the batch is applied again one message at a
time, each in its own transaction, exactly as the one-message subscriber does. The one
record that fails then gets the one-message policy (services/common/dead_letters.py): a
poison message is parked on the dead-letter topic and the rest of the batch goes on; a
transient failure backs off and nacks the batch, which comes again from its first record
(what was applied before it is recognised and skipped).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from faststream import Context
from faststream.kafka.annotations import KafkaMessage

from contracts.access import AccessEventV1, parse_access_event
from projections import status_list
from projections.projector import ProjectorContext
from services.common.dead_letters import RECORD_FAILURES, RecordFailures
from services.common.event_routing import route
from services.common.metrics import PROJECTOR_BATCH_FALLBACKS

log = logging.getLogger("projections.consumer")

Failures = Annotated[RecordFailures, Context(RECORD_FAILURES)]


def _parse(record: Any) -> AccessEventV1:
    for _, value in record.headers:  # what FastStream's parser would have refused, for this record alone
        value.decode()
    return parse_access_event(record.value)


# FastStream parses a batch as one message, decoding every record's headers and body: one
# header that is not UTF-8 would fail the whole batch there, before any handler could single
# it out, and the batch would come back forever. So the subscriber parses with headers it can
# decode, keeps the records as they came (the handler checks each one), and leaves the bodies
# undecoded (the handler parses each record itself).
async def parse_batch(records: tuple[Any, ...], original: Callable[..., Awaitable[Any]]) -> Any:
    message = await original(tuple(_decodable(record) for record in records))
    message.raw_message = records
    return message


async def raw_bodies(message: Any, original: Callable[..., Awaitable[Any]]) -> list[bytes]:
    return [record.value for record in message.raw_message]


def _decodable(record: Any) -> Any:
    try:
        for _, value in record.headers:
            value.decode()
    except UnicodeDecodeError:
        return dataclasses.replace(record, headers=[])
    return record


async def on_access_batch(
    bodies: list[bytes],
    message: KafkaMessage,
    projector: ProjectorContext,
    failures: Failures,
    subscriber: Annotated[Any, Context("handler_", default=None)],
) -> None:
    """A fetched batch of access events (`bodies` are left undecoded: each record is parsed here,
    so a record that does not parse is that message's failure, not the batch's)."""
    records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
    handler_for = route(status_list.HANDLERS, otherwise=status_list.on_other_event)
    try:
        events = [_parse(record) for record in records]
        async with projector.batch(status_list.PROJECTION, [e.position for e in events]):
            for event in events:
                await handler_for(event.type)(event, projector)
        return
    except Exception as exc:  # noqa: BLE001 - whatever failed, one message at a time finds which
        PROJECTOR_BATCH_FALLBACKS.inc()
        log.info("a batch of %d access events failed (%s); applying them one by one", len(records), exc)

    def consuming() -> bool:  # a stop ends a backoff at once, as for one-message subscribers
        return getattr(subscriber, "running", True)

    for record in records:
        try:
            event = _parse(record)
            await handler_for(event.type)(event, projector)
        except Exception as exc:  # noqa: BLE001 - the one-message policy decides: park, or nack the batch
            await failures.settle(record, exc, consuming)
