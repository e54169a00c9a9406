"""Access events a fetched batch at a time: one transaction for the whole batch.

The broker hands the subscriber every record a fetch returned (up to PROJECTOR_BATCH_MAX).
Each is parsed into its typed envelope and given to the same typed handler the one-message
subscriber would route it to (status_list.HANDLERS), all inside `Projector.batch`: one
connection, one transaction, one update of the projection's position, one commit. Per
event that saves a pool checkout, a BEGIN and a COMMIT, and the position row's update.
And the batch's claims go in one statement and its writes a statement kind at a time, in
waves of one event per account (statements.py): a few round trips per batch, not three per
event. Delivery outcomes (deliveries topic) are applied a batch at a time the same way.

If anything in the batch fails (a message that does not parse, a gap to repair, the
database), the transaction rolls back and the batch is applied again one message at a
time, each in its own transaction, exactly as the one-message subscriber does. The one
record that fails then gets the one-message policy (services/common/dead_letters.py): a
poison message is parked on the dead-letter topic and the rest of the batch goes on; a
transient failure backs off and nacks the batch, which comes again from its first record
(what was applied before it is recognised and skipped).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any



from contracts.access import AccessEventV1
from contracts.deliveries import DeliveryOutcomeV1
from projections import deliveries, status_list
from projections.projector import Claim, Projector, ProjectorContext
from projections.statements import waves
from services.common import batch_records
from services.common.context import KafkaMessage, LoopContext
from services.common.dead_letters import RECORD_FAILURES, RecordFailures
from services.common.event_routing import route
from services.common.metrics import PROJECTOR_BATCH_FALLBACKS

log = logging.getLogger("projections.consumer")

Failures = Annotated[RecordFailures, LoopContext(RECORD_FAILURES)]
Subscriber = Annotated[Any, LoopContext("handler_", default=None)]


_parse = batch_records.parse_access_record


def _parse_outcome(record: Any) -> DeliveryOutcomeV1:
    for _, value in record.headers:
        value.decode()
    return DeliveryOutcomeV1.model_validate_json(record.value)


def _access_claim(event: AccessEventV1) -> Claim:
    return (event.aggregate_id, event.aggregate_version, event.event_id, event.position)


def _outcome_claim(outcome: DeliveryOutcomeV1) -> Claim:
    return (outcome.delivery_id, outcome.attempt, outcome.event_id, None)


@functools.cache
def _access_handlers() -> Callable[[str], Callable[..., Awaitable[Any]]]:
    # Built once: route() reads every handler's type hints, a cost worth paying once per process.
    return route(status_list.HANDLERS, otherwise=status_list.on_other_event)


async def apply_access_events(projector: Projector, events: list[AccessEventV1]) -> None:
    """`events` (in the order fetched) in one transaction: claimed in one statement, then given
    to their handlers in waves of one event per account, each wave's writes sent together."""
    handler_for = _access_handlers()
    claims = [_access_claim(e) for e in events]
    check_gaps = projector.event_source is not None
    async with projector.batch(status_list.PROJECTION, [e.position for e in events], claims,
                               check_gaps=check_gaps, accounts=[e.key for e in events]) as queue:
        for wave in waves(events, key=lambda e: e.key):
            for event in wave:
                await handler_for(event.type)(event, projector)
            await queue.flush()


async def on_access_batch(
    bodies: list[bytes],
    message: KafkaMessage,
    projector: ProjectorContext,
    failures: Failures,
    subscriber: Subscriber,
) -> None:
    """A fetched batch of access events (`bodies` are left undecoded: each record is parsed here,
    so a record that does not parse is that message's failure, not the batch's)."""
    handler_for = _access_handlers()

    await _apply_batch(message, _parse, lambda events: apply_access_events(projector, events), lambda e: handler_for(e.type)(e, projector), failures, subscriber,
                       "access events")


async def on_delivery_batch(
    bodies: list[bytes],
    message: KafkaMessage,
    projector: ProjectorContext,
    failures: Failures,
    subscriber: Subscriber,
) -> None:
    """A fetched batch of delivery outcomes, as on_access_batch does access events."""

    async def apply(outcomes: list[DeliveryOutcomeV1]) -> None:
        async with projector.batch(deliveries.PROJECTION, [], [_outcome_claim(o) for o in outcomes],
                                   accounts=[o.key for o in outcomes]) as queue:
            for wave in waves(outcomes, key=lambda o: o.account_id):
                for outcome in wave:
                    await deliveries.on_delivery(outcome, projector)
                await queue.flush()

    await _apply_batch(message, _parse_outcome, apply, lambda o: deliveries.on_delivery(o, projector), failures,
                       subscriber, "delivery outcomes")


async def _apply_batch(
    message: KafkaMessage,
    parse: Callable[[Any], Any],
    apply: Callable[[list[Any]], Awaitable[None]],
    apply_one: Callable[[Any], Awaitable[Any]],
    failures: RecordFailures,
    subscriber: Any,
    what: str,
) -> None:
    records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
    try:
        await apply([parse(record) for record in records])
        return
    except Exception as exc:  # noqa: BLE001 - whatever failed, one message at a time finds which
        PROJECTOR_BATCH_FALLBACKS.inc()
        log.info("a batch of %d %s failed (%s); applying them one by one", len(records), what, exc)

    def consuming() -> bool:  # a stop ends a backoff at once, as for one-message subscribers
        return getattr(subscriber, "running", True)

    for record in records:
        try:
            await apply_one(parse(record))
        except Exception as exc:  # noqa: BLE001 - the one-message policy decides: park, or nack the batch
            await failures.settle(record, exc, consuming)
