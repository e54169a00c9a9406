"""Stored events straight to what a read model needs, without building domain events or envelopes.

Replay reads the whole log; going through the library's mapper (its JSON transcoder's
callback per object, the domain event objects) and then the pydantic envelopes the relay
publishes was most of its CPU. The events it reads were written by this service and are
trusted, so here each one's stored JSON is decoded with orjson, and the transcoder's typed
values (`{"_type_": "uuid_hex", "_data_": ...}`, datetimes) are turned back into Python by
the transcoder's own registered transcodings: the same values the mapper would give. An
event whose store is not the library's JSON transcoder, or that the fast path cannot read,
goes through the mapper (`LogEnvelopes`' path), so the answer is the same either way
(tests/integration/test_replay.py compares a replay through it with the live projection).

`StoredFact` holds what an envelope holds (the relay's `to_envelope`): workspace and
account from the aggregate's first event, the actor, the time, and the event's payload
as a mapping (its contract's fields, nested values as mappings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID, SafeUUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Notification, UUIDAsHex

from services.invite_service.event_ids import event_id_hex, origin_of_fields

# Not imported here: `contracts` (every contract's pydantic models) and `envelopes`, which a
# replay worker would import for nothing but a few rare events (StoredFacts takes the names
# and the namespace it needs; the models are imported when an event needs one).


# Payloads whose nested values a read model reads typed (a share's time, a traveler's account
# id): the domain event holds them as plain JSON (strings), so they are validated by the
# contract, as the envelope's parsing would. Rare events; every other payload's values the
# read models read are top-level, typed by the transcoder.
VALIDATED = frozenset({"TripFirstShared", "TripShared"})


class StoredFact(NamedTuple):
    type: str
    aggregate_id: UUID
    version: int
    position: int
    event_id: str  # its hex digits (event_ids.event_id_hex)
    workspace: str
    account_id: UUID | None
    at: Any  # datetime
    by: str  # the actor's id, else its kind (as the status list names who did it)
    data: dict[str, Any]


_new_uuid, _set_slot, _UNKNOWN = object.__new__, object.__setattr__, SafeUUID.unknown


def _uuid_from_text(text: str) -> UUID:
    """A uuid from PostgreSQL's text form (8-4-4-4-12 hex digits): the raw pages' originator ids."""
    return _uuid_from_hex(text.replace("-", ""))


def _uuid_from_hex(text: str) -> UUID:
    """`UUID(hex)` for the transcoder's 32 hex digits, without its parsing of other spellings
    (the uuid module's constructor is pure Python, and every stored event holds one or two)."""
    if len(text) != 32:
        return UUID(text)
    value = _new_uuid(UUID)
    _set_slot(value, "int", int(text, 16))
    _set_slot(value, "is_safe", _UNKNOWN)  # an enum member's lookup is a Python call
    return value


class _Slow(Exception):
    """This stored event takes the mapper's path."""


class StoredFacts:
    """Pages of the notification log -> `StoredFact`s, in order. `app` is the Application: its
    mapper says how events are stored, its recorder finds an aggregate's first event.

    Replay's worker processes have no Application (building one imports and connects far more
    than decoding needs): `from_transcodings` decodes with the transcoder's registered
    transcodings alone, and builds the Application (`load_app`) only if an event needs it."""

    def __init__(self, app: Any) -> None:
        mapper = app.mapper
        fast = type(mapper.transcoder) is JSONTranscoder
        self._setup(getattr(mapper.transcoder, "names", {}) if fast else None, mapper.cipher, mapper.compressor,
                    lambda: app, None, None)

    @classmethod
    def from_transcodings(cls, names: dict[str, Any] | None, load_app: Callable[[], Any], *,
                          contracts: frozenset[str] | None = None, namespace: bytes | None = None) -> StoredFacts:
        """`names`: the JSON transcoder's transcodings (None: the store is not the library's JSON
        transcoder's, so every event takes the mapper's path). No cipher, no compressor.
        `contracts` (the event types with a payload model: `contract_names()`) and `namespace`
        (the event ids': `event_id_namespace()`) spare a worker importing the contracts."""
        facts = cls.__new__(cls)
        facts._setup(names, None, None, load_app, contracts, namespace)
        return facts

    def _setup(self, names: dict[str, Any] | None, cipher: Any, compressor: Any, load_app: Callable[[], Any],
               contracts: frozenset[str] | None, namespace: bytes | None) -> None:
        self._load_app, self._app = load_app, None
        self._contracts = contracts if contracts is not None else contract_names()
        self._namespace = namespace if namespace is not None else event_id_namespace()
        self._fast = names is not None
        self._names = names or {}
        # The library's own transcodings of uuids and datetimes, called without their wrappers
        # (what their `decode` does, and the two types nearly every stored event has).
        self._decoders: dict[str, Any] = {}
        if isinstance(self._names.get("uuid_hex"), UUIDAsHex):
            self._decoders["uuid_hex"] = _uuid_from_hex
        if isinstance(self._names.get("datetime_iso"), DatetimeAsISO):
            self._decoders["datetime_iso"] = datetime.fromisoformat
        self._cipher, self._compressor = cipher, compressor
        # The whole log's aggregates (replay reads it all), by their id's text as the raw pages
        # have it: a str hashes in C, a UUID's hash is a Python call.
        self._origins: dict[str, tuple[str, UUID | None]] = {}
        self._type_names: dict[str, str] = {}

    @property
    def app(self) -> Any:
        if self._app is None:
            self._app = self._load_app()
        return self._app

    def know_origin(self, aggregate_id: str, origin: tuple[str, UUID | None]) -> None:
        """An aggregate's origin (its id as text) found by another reader (a worker that read its first event)."""
        self._origins[aggregate_id] = origin

    def __call__(self, page: Iterable[Any]) -> list[StoredFact]:
        """Notifications (the library's) -> facts."""
        return self.rows([(n.id, str(n.originator_id), n.originator_version, n.topic, n.state) for n in page])

    def rows(self, page: Iterable[tuple[int, str, int, str, bytes]]) -> list[StoredFact]:
        """Raw rows (the log follower's `RawRow`: id, originator id as text, version, topic, state) -> facts."""
        # Per event, this loop is most of replay's CPU: the attributes it uses are locals, and a
        # StoredFact is built as the tuple it is (the named tuple's constructor is a Python call).
        out: list[StoredFact] = []
        append, fast, type_names, decode = out.append, self._fast, self._type_names, self._decode
        origins = self._origins
        make, event_id, uuid_of, namespace = tuple.__new__, event_id_hex, _uuid_from_text, self._namespace
        for row in page:
            position, originator, version, topic, stored = row
            aggregate_id = uuid_of(originator)
            try:
                if not fast:
                    raise _Slow
                name = type_names.get(topic) or self._type_name(topic)
                deep = name in VALIDATED
                state = decode(stored, deep)
            except _Slow:
                append(self._slow(Notification(id=position, originator_id=aggregate_id, originator_version=version,
                                               topic=topic, state=stored)))
                continue
            origin = origins.get(originator)
            if origin is None:
                origin = self._origin(aggregate_id, version, state, originator)
            actor = state.get("actor") or {}
            data = vars(_payload(name).model_validate(state)) if deep else state
            append(make(StoredFact, (
                name, aggregate_id, version, position, event_id(namespace, originator, version), origin[0],
                origin[1], state["timestamp"], actor.get("id") or actor.get("kind"), data,
            )))
        return out

    def _type_name(self, topic: str) -> str:
        name = self._type_names.get(topic)
        if name is None:
            name = topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]  # "module:Aggregate.Event" -> "Event"
            if name not in self._contracts:
                from services.invite_service.envelopes import NoContract

                raise NoContract(f"event type {name} has no payload model in contracts.access")
            self._type_names[topic] = name
        return name

    def _decode(self, state: bytes, deep: bool) -> dict[str, Any]:
        """The stored JSON with the transcoder's typed values decoded: all of them (`deep`), or
        only the top-level ones, which are all the read models read of any other payload (and
        walking every nested mapping, an invite's sender for one, was most of the decoding)."""
        if self._cipher is not None:
            state = self._cipher.decrypt(state)
        if self._compressor is not None:
            state = self._compressor.decompress(state)
        try:
            obj = orjson.loads(state)
        except orjson.JSONDecodeError:
            raise _Slow from None
        if deep:
            return {key: self._typed(value) for key, value in obj.items()}
        decoders = self._decoders
        for key, value in obj.items():
            if type(value) is dict and "_type_" in value:
                # The common case inline (a uuid's or a datetime's string): a call per value was a
                # third of the decoding; anything else goes through `_typed_value`'s checks.
                decode, data = decoders.get(value["_type_"]), value.get("_data_")
                if decode is not None and type(data) is str and len(value) == 2:
                    obj[key] = decode(data)
                else:
                    obj[key] = self._typed_value(value)
        return obj

    def _typed_value(self, value: dict[str, Any]) -> Any:
        if len(value) != 2 or "_data_" not in value:
            raise _Slow
        kind, data = value["_type_"], value["_data_"]
        if type(data) is not str:
            raise _Slow  # a typed value of typed values: the transcoder's bottom-up path
        decode = self._decoders.get(kind)
        if decode is None:
            transcoding = self._names.get(kind)
            if transcoding is None:
                raise _Slow
            decode = self._decoders[kind] = transcoding.decode
        return decode(data)

    def _typed(self, value: Any) -> Any:
        """The transcoder's object hook, bottom up, for one decoded value."""
        kind = type(value)
        if kind is dict:
            value = {k: self._typed(v) for k, v in value.items()}
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                transcoding = self._names.get(value["_type_"])
                if transcoding is None:
                    raise _Slow
                return transcoding.decode(value["_data_"])  # bottom up, as the transcoder's object hook
            return value
        if kind is list:
            return [self._typed(v) for v in value]
        return value

    def _origin(self, aggregate_id: UUID, version: int, state: dict[str, Any], key: str | None = None,
                ) -> tuple[str, UUID | None]:
        if version == 1:
            origin = origin_of_fields(state, aggregate_id)
        else:  # a log read from the middle (not replay's case): the aggregate's first event says
            first = self.app.recorder.select_events(aggregate_id, lte=1, limit=1)[0]
            event = self.app.mapper.to_domain_event(first)
            origin = origin_of_fields(vars(event), event.originator_id)
        self._origins[key if key is not None else str(aggregate_id)] = origin  # a UUID's str is a Python call
        return origin

    def _slow(self, notification: Any) -> StoredFact:
        from services.invite_service.envelopes import event_data

        event = self.app.mapper.to_domain_event(notification)
        aggregate_id, version = event.originator_id, event.originator_version
        origin = self._origins.get(str(aggregate_id)) or self._origin_of_event(event)
        actor = event.actor or {}
        return StoredFact(
            type(event).__name__, aggregate_id, version, notification.id,
            event_id_hex(self._namespace, str(aggregate_id), version),
            origin[0], origin[1], event.timestamp, actor.get("id") or actor.get("kind"),
            vars(_payload(type(event).__name__).model_validate(event_data(event))),
        )

    def _origin_of_event(self, event: Any) -> tuple[str, UUID | None]:
        if event.originator_version == 1:
            origin = origin_of_fields(vars(event), event.originator_id)
            self._origins[str(event.originator_id)] = origin
            return origin
        return self._origin(event.originator_id, event.originator_version, {})


def contract_names() -> frozenset[str]:
    """The event types with a payload model in `contracts.access` (the only ones replay reads)."""
    from contracts.access import PAYLOADS

    return frozenset(PAYLOADS)


def event_id_namespace() -> bytes:
    from contracts.access import EVENT_ID_NAMESPACE

    return EVENT_ID_NAMESPACE.bytes


def _payload(name: str) -> Any:
    from contracts.access import PAYLOADS

    return PAYLOADS[name]
