"""How every batch consumer (projector, notifier, autoinvite) lets FastStream parse a fetched batch.

FastStream parses a batch as one message, decoding every record's headers and body: one
header that is not UTF-8 would fail the whole batch there, before any handler could single
it out, and the batch would come back forever. So a batch subscriber parses with the headers
it can decode (`parse_batch`), keeps the records as they came on the message (the handler
checks each one and dead-letters the bad ones), and leaves the bodies undecoded
(`raw_bodies`: the handler parses each record itself).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from contracts.access import ENVELOPES, TYPE_HEADER, AccessEventV1, parse_access_event


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


def parse_access_record(record: Any) -> AccessEventV1:
    """One record of a fetched access-topic batch as its typed envelope. Raises what the
    one-message parser would have raised for it alone (a header that is not UTF-8, an invalid
    body), so the caller dead-letters this record and goes on with the others."""
    type_ = None
    for name, value in record.headers:
        decoded = value.decode()
        if name == TYPE_HEADER:
            type_ = decoded
    # The type header names the typed envelope: validate once, straight from the bytes, rather
    # than as the generic envelope and then again as the typed one (parse_access_event). Any
    # doubt (no header, a body that disagrees) goes the long way, which says what is wrong.
    typed = ENVELOPES.get(type_) if type_ else None
    if typed is not None:
        try:
            return typed.model_validate_json(record.value)
        except ValidationError:
            pass
    return parse_access_event(record.value)
