"""Share events a fetched batch at a time: trips decided concurrently, one offset commit per batch.

One share at a time, a consumer waits on three event-store reads and a commit per share,
and commits its offset after each: tens of shares a second. Here every record of a fetch is
parsed and handed to the command at once, one chain per Kafka key (a trip's shares stay in
order), so the decisions of many trips share group-commit transactions; the batch is
acknowledged once all are stored.

A record that fails gets the one-message policy (services/common/dead_letters.py): a share
that is not v1 is parked on the dead-letter topic and the others go on; a transient failure
backs off and nacks the batch, which comes again from its first record, and every share
already decided is recognised by its trip (`already_handled`) and changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any


from contracts.shares import TripShareV1
from services.common.context import KafkaMessage, LoopContext  # on the loop: no thread hop per parameter
from services.common.dead_letters import RECORD_FAILURES, RecordFailures

Failures = Annotated[RecordFailures, LoopContext(RECORD_FAILURES)]


def parse(record: Any) -> TripShareV1:
    for _, value in record.headers:  # what FastStream's parser would have refused, for this record alone
        value.decode()
    return TripShareV1.model_validate_json(record.value)


async def on_share_batch(
    bodies: list[bytes],
    message: KafkaMessage,
    app: Annotated[Any, LoopContext("portal_access")],
    stats: Annotated[Any, LoopContext("autoinvite_stats")],
    failures: Failures,
    subscriber: Annotated[Any, LoopContext("handler_", default=None)],
) -> None:
    """A fetched batch of share events (`bodies` undecoded: each record is parsed on its own)."""
    from services.autoinvite.consumer import handle  # the one-share step, shared with the typed handler

    records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)

    def consuming() -> bool:  # a stop ends a backoff at once, as for one-message subscribers
        return getattr(subscriber, "running", True)

    async def chain(keyed: list[Any]) -> None:
        for record in keyed:
            try:
                await handle(parse(record), app, stats)
            except Exception as exc:  # noqa: BLE001 - the one-message policy decides: park, or nack the batch
                await failures.settle(record, exc, consuming)

    by_key: dict[bytes | None, list[Any]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    outcomes = await asyncio.gather(*(chain(keyed) for keyed in by_key.values()), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome  # a nack (after its backoff): the batch comes again; decided shares are skipped
