"""The notifier's handler: a fetched batch of access events, delivered together.

Each record is parsed into its typed envelope and rendered into the messages it sends
(Notifier.render); a record that does not parse or render is parked on the dead-letter topic
with the reason, and the rest of the batch goes on. The rest is then delivered in one go
(Notifier.deliver: one ledger round trip per step for the whole batch). If that fails (the
database, a bug), the batch is delivered again one event at a time, and the one that fails
gets the one-message policy (services/common/dead_letters.py): parked, or a backoff and a
nack of the batch, which then comes again (the ledger skips what was delivered).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any


from services.common.consumer_errors import Unprocessable
# Resolved on the event loop: faststream's own Context costs a thread hop per parameter and batch.
from services.common import batch_records
from services.common.context import KafkaMessage, LoopContext
from services.common.dead_letters import RECORD_FAILURES, RecordFailures
from services.notifier import team
from services.notifier.consumer import Notifier, Plan

log = logging.getLogger("porchlight.notifier")

NotifierContext = Annotated[Notifier, LoopContext("notifier")]
Failures = Annotated[RecordFailures, LoopContext(RECORD_FAILURES)]


class RenderFailed(Unprocessable):
    """The event is valid but its message cannot be rendered: no retry will change that."""


_parse = batch_records.parse_access_record


async def on_access_batch(
    bodies: list[bytes],
    message: KafkaMessage,
    notifier: NotifierContext,
    failures: Failures,
    subscriber: Annotated[Any, LoopContext("handler_", default=None)],
) -> None:
    """A fetched batch of access events (`bodies` are left undecoded: each record is parsed here)."""
    records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)

    def consuming() -> bool:  # a stop ends a backoff at once, as for one-message subscribers
        return getattr(subscriber, "running", True)

    parsed = []
    for record in records:
        try:
            parsed.append((record, _parse(record)))
        except Exception as exc:  # noqa: BLE001 - not an access event: the policy parks it
            await failures.settle(record, exc, consuming)
    settings = [s for _, e in parsed if (s := team.team_setting(e)) is not None]
    known = await notifier.team_addresses([e for _, e in parsed])
    known.update({ws: address for ws, address in settings if address})
    plans = []
    for record, event in parsed:
        try:
            messages = notifier.render(event, known.get(event.workspace))
        except Exception as exc:  # noqa: BLE001 - a template or data problem no retry fixes
            await failures.settle(record, RenderFailed(f"cannot render {event.type}: {type(exc).__name__}: {exc}"),
                                  consuming)
            continue
        plans.append((record, Plan(event, record.value.decode(), messages)))
    try:
        await notifier.deliver([p for _, p in plans], settings)
        return
    except Exception as exc:  # noqa: BLE001 - whatever failed, one event at a time finds which
        log.info("a batch of %d events failed (%s: %s); delivering them one by one", len(plans),
                 type(exc).__name__, exc)
    for record, plan in plans:
        try:
            setting = team.team_setting(plan.event)
            await notifier.deliver([plan], [setting] if setting else [])
        except Exception as exc:  # noqa: BLE001 - the one-message policy decides: park, or nack the batch
            await failures.settle(record, exc, consuming)
