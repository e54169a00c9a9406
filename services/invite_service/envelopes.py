"""Stored domain events → `contracts.AccessEventV1`, the only shape that leaves this service.

Each event's own fields go in `data`, explicitly; the library's bookkeeping attributes do
not (never `asdict(event)` on the wire). Ids are derived from (aggregate, version), so a
re-published event carries the same `event_id` and consumers can drop the repeat.

Later events of an aggregate (an activation, a claim) don't repeat which workspace and
account they belong to; `Origins` finds that out from the aggregate's first event.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

from contracts.access import AccessEventV1, Actor, event_id_for

# Attributes the library adds to every event; the envelope carries them in its own fields.
_BOOKKEEPING = {"originator_id", "originator_version", "timestamp", "originator_topic", "actor"}

Origin = tuple[str, UUID | None]  # (workspace slug, account id or None for workspace events)


def event_data(event: Any) -> dict[str, Any]:
    return {k: v for k, v in event.__dict__.items() if k not in _BOOKKEEPING}


def origin_of_created(event: Any) -> Origin:
    """Workspace and account of an aggregate, read from its first event."""
    data = event_data(event)
    if "slug" in data:  # WorkspaceCreated
        return data["slug"], None
    if "account_id" in data:  # InviteSent: an invitation belongs to an account
        return data["workspace"], data["account_id"]
    return data["workspace"], event.originator_id  # AccountCreated


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


def to_envelope(event: Any, position: int, origin: Origin) -> AccessEventV1:
    workspace, account_id = origin
    return AccessEventV1(
        event_id=event_id_for(event.originator_id, event.originator_version),
        type=type(event).__name__,
        workspace=workspace,
        account_id=account_id,
        aggregate_id=event.originator_id,
        aggregate_version=event.originator_version,
        position=position,
        occurred_at=event.timestamp,
        actor=Actor(**event.actor),
        data=event_data(event),
    )
