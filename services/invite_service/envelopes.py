"""Stored domain events → typed `contracts.access` envelopes, the only shape that leaves this service.

`data` is built from the event type's payload model in `contracts`, field by field: an
attribute the contract does not name never reaches the wire (never `asdict(event)`), and
an event type without a contract fails here, loudly, instead of publishing an untyped
payload. Ids are derived from (aggregate, version), so a re-published event carries the
same `event_id` and consumers can drop the repeat.

Later events of an aggregate (an activation, a claim) don't repeat which workspace and
account they belong to; `Origins` finds that out from the aggregate's first event.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

from contracts.access import ENVELOPES, EVENT_ID_NAMESPACE, PAYLOADS, AccessEventV1, Actor
# Defined apart, so that replay's worker processes can import them without the contracts.
from services.invite_service.event_ids import Origin as Origin
from services.invite_service.event_ids import origin_of_fields as origin_of_fields


class NoContract(LookupError):
    """A domain event type with no payload model in `contracts.access`: add one before publishing it."""


@functools.cache
def _payload_fields(name: str) -> tuple[str, ...]:
    payload = PAYLOADS.get(name)
    if payload is None:
        raise NoContract(f"event type {name} has no payload model in contracts.access")
    return tuple(payload.model_fields)


def event_data(event: Any) -> dict[str, Any]:
    """The event's fields its contract names, and only those."""
    attributes = vars(event)  # a field the stored event lacks may still have its class default
    return {
        field: attributes[field] if field in attributes else getattr(event, field)
        for field in _payload_fields(type(event).__name__)
        if field in attributes or hasattr(event, field)
    }


def origin_of_created(event: Any) -> Origin:
    """Workspace and account of an aggregate, read from its first event."""
    return origin_of_fields(vars(event), event.originator_id)


class Origins:
    """Remembers each aggregate's origin; asks `load_first_event` for ones it has not seen."""

    def __init__(self, load_first_event: Callable[[UUID], Any], max_size: int = 100_000) -> None:
        self._load_first_event = load_first_event
        self._cache: OrderedDict[UUID, Origin] = OrderedDict()
        self._max_size = max_size

    def of(self, event: Any) -> Origin:
        key = event.originator_id
        origin = self._cache.get(key)
        if origin is None:
            first = event if event.originator_version == 1 else self._load_first_event(key)
            origin = origin_of_created(first)
            self._cache[key] = origin
            if len(self._cache) > self._max_size:
                self._cache.popitem(last=False)
        return origin


_EVENT_ID_NAMESPACE = EVENT_ID_NAMESPACE.bytes


def fast_event_id(aggregate_id: UUID, version: int) -> UUID:
    """`contracts.access.event_id_for`, computed as uuid5 does but without its UUID round trips:
    replay and the relay derive one per event (tests/unit/test_event_contracts.py keeps them equal)."""
    digest = hashlib.sha1(_EVENT_ID_NAMESPACE + f"{aggregate_id}/{version}".encode()).digest()
    return UUID(bytes=digest[:16], version=5)


def to_envelope(event: Any, position: int, origin: Origin) -> AccessEventV1:
    workspace, account_id = origin
    name = type(event).__name__
    return ENVELOPES[name](
        event_id=fast_event_id(event.originator_id, event.originator_version),
        workspace=workspace,
        account_id=account_id,
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        position=position,
        occurred_at=event.timestamp,
        actor=Actor.model_validate(event.actor),
        data=event_data(event),
    )


class LogEnvelopes:
    """Pages of the notification log → typed envelopes, for every reader of the log that
    publishes or projects them (the relay, replay). `app` is the Application: its recorder
    finds an aggregate's first event, its mapper turns stored events into domain events."""

    def __init__(self, app: Any, max_origins: int = 100_000) -> None:
        self._app = app
        self._origins = Origins(self._first_event, max_origins)

    def _first_event(self, aggregate_id: UUID) -> Any:
        stored = self._app.recorder.select_events(aggregate_id, lte=1, limit=1)
        return self._app.mapper.to_domain_event(stored[0])

    def __call__(self, page: Any) -> list[AccessEventV1]:
        out = []
        to_domain_event, origin_of = self._app.mapper.to_domain_event, self._origins.of
        for notification in page:
            event = to_domain_event(notification)
            out.append(to_envelope(event, notification.id, origin_of(event)))
        return out
