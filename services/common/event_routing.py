"""Access events to typed handlers: one subscriber per topic, one handler per event type.

    subscribe_by_type(broker.subscriber(topic, ...), [on_invite_sent], otherwise=on_other_event)

Each handler takes the typed envelope of its event type as its first parameter
(`msg: InviteSentV1`); that annotation is the routing key, so adding a type is adding a
function to the list. FastStream validates the body against it: a known type with a
malformed payload fails validation in the handler, where the dead-letter middleware
parks it. `otherwise` takes every other message (types the consumer does not care
about, types added after it was built, and junk that it then fails to validate).

Routing reads the Kafka header `type` (contracts.access.TYPE_HEADER) and, for messages
without it (older producers, tests publishing raw envelopes), the body's `type`.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable
from typing import Any

from faststream.message import StreamMessage

from contracts.access import ENVELOPES, TYPE_HEADER

Handler = Callable[..., Any]


async def event_type(message: StreamMessage[Any]) -> str | None:
    """The event type of a message: its header, else its body's `type`, else None."""
    header = message.headers.get(TYPE_HEADER)
    if header:
        return header
    # A filter runs outside the middlewares, so an exception here is never dead-lettered:
    # it would fail the message over and over. Undecodable bodies go to `otherwise`.
    try:
        body = await message.decode()
    except Exception:  # noqa: BLE001 - see above: anything the decoder raises means "no type"
        return None
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else None


def handled_type(handler: Handler) -> str:
    """The event type `handler` takes, from its first parameter's annotation (a typed envelope)."""
    first = next(iter(inspect.signature(handler).parameters))
    envelope = typing.get_type_hints(handler).get(first)
    for name, cls in ENVELOPES.items():
        if envelope is cls:
            return name
    raise TypeError(f"{handler.__qualname__}: first parameter must be a typed envelope of contracts.access")


def of_type(name: str) -> Callable[[StreamMessage[Any]], Any]:
    # Async on purpose: FastStream runs a plain-function filter in a thread pool, per message.
    async def is_of_type(message: StreamMessage[Any]) -> bool:
        return not message.processed and await event_type(message) == name

    is_of_type.__name__ = f"is_{name}"
    return is_of_type


def subscribe_by_type(subscriber: Any, handlers: Iterable[Handler], *, otherwise: Handler) -> None:
    """Register each typed handler on `subscriber` for its event type, then `otherwise` for the rest."""
    seen: set[str] = set()
    for handler in handlers:
        name = handled_type(handler)
        if name in seen:
            raise ValueError(f"two handlers for {name} on one subscriber")
        seen.add(name)
        subscriber(filter=of_type(name))(handler)
    subscriber(otherwise)  # registered last: FastStream tries handlers in order


def route(handlers: Iterable[Handler], *, otherwise: Handler) -> Callable[[str], Handler]:
    """The handler `subscribe_by_type` would pick for an event type: for replays and tests."""
    by_type = {handled_type(handler): handler for handler in handlers}
    return lambda name: by_type.get(name, otherwise)
