"""Replay's read models in memory: the log folded into rows, then written at once.

Each stored event's facts (services/invite_service/stored_facts.py) go through the same
rules the live projector applies (projections/status_rows.py: what an event does to a
row); the rows stay in memory until the whole log is folded, then each table is filled with
one COPY, with every event's applied-record. A row touched by many events is written once,
and nothing waits on PostgreSQL per event.

Replay folds in worker processes (deploy/replay_worker.py), each one `part` of the rows:
a row belongs to one part (`part_of` its key), and each part applies only its own rows'
effects. Every event is decoded and claimed by one part (`Parts.of`): all of an aggregate's
events by the same part, in their order; an account's by its row's part, and so an
invitation's (its first event names its account), whose InviteSent touches only that row.
An event that also touches another part's rows (a trip share naming several accounts) is
handed to that part, which folds it after its own events. That is only another
interleaving of different aggregates' events, in which the rules end in the same rows
(tests/unit/test_status_rows.py); each aggregate's own events stay in their order.
"""

from __future__ import annotations

import functools
import operator
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg
import orjson

from projections import status_rows
from services.invite_service.stored_facts import StoredFact

CLAIM_COLUMNS = ("projection", "aggregate_id", "version", "event_id", "position")
COLUMNS = {status_rows.ACCOUNTS: status_rows.ACCOUNT_COLUMNS, status_rows.TRAVELERS: status_rows.TRAVELER_COLUMNS}
Claim = tuple[str, uuid.UUID, int, str, int]  # the event id as hex digits: asyncpg takes them


def part_of(key: tuple[Any, ...], parts: int) -> int:
    """Which part a row belongs to: an account's by its id (as `part_of_originator` of the
    account's aggregate), any other by a checksum of its key (the same in every process,
    unlike `hash`)."""
    if len(key) == 1 and type(key[0]) is uuid.UUID:
        return key[0].int % parts
    return zlib.crc32("\x1f".join(map(str, key)).encode()) % parts


def part_of_originator(originator: str, parts: int) -> int:
    """Which part decodes and claims an aggregate's events (its id as PostgreSQL's text). When
    the count of parts divides 2**32 (a power of two) the id's last eight digits decide alone."""
    if parts & (parts - 1) == 0:
        return int(originator[-8:], 16) % parts
    return int(originator.replace("-", ""), 16) % parts


# How the JSON transcoder stores a top-level uuid named account_id (an InviteSent's): where the
# reading process finds an invitation's account without decoding the event. Found elsewhere
# (nested), or not found (another store's format), it only decides which part does the work.
_ACCOUNT_ID = b'"account_id":{"_type_":"uuid_hex","_data_":"'


class Parts:
    """Which part decodes and claims each event of the log, read from its start (raw rows: id,
    originator id as text, version, topic, stored state): its aggregate's part
    (`part_of_originator`), unless the aggregate's first event names an account (an
    invitation's InviteSent): then that account's part, where the event's row is, for every
    event of the aggregate. Each InviteSent was decoded twice before, once in each part."""

    def __init__(self, parts: int) -> None:
        self.parts = parts
        self._elsewhere: dict[str, int] = {}  # aggregates not in their own part (an invitation per invite)
        # Whether an event type's first events name an account: looked for in the first one of each
        # type only (an account's AccountCreated names none, and searching its bytes cost as much
        # as the rest of the split).
        self._names_account: dict[str, bool] = {}

    def of(self, row: Sequence[Any]) -> int:
        originator = row[1]
        part = self._elsewhere.get(originator)
        if part is not None:
            return part
        parts = self.parts
        part = part_of_originator(originator, parts)
        if row[2] == 1 and self._names_account.get(row[3], True):
            state = row[4]
            at = state.find(_ACCOUNT_ID) + len(_ACCOUNT_ID)
            if row[3] not in self._names_account:
                self._names_account[row[3]] = at >= len(_ACCOUNT_ID)
            if at >= len(_ACCOUNT_ID):
                try:
                    account = int(state[at:at + 32], 16) % parts
                except ValueError:
                    return part
                if account != part:
                    self._elsewhere[originator] = account
                    return account
        return part


def claim_of(projection: str, f: StoredFact) -> Claim:
    return (projection, f.aggregate_id, f.version, f.event_id, f.position)


class ReadModelFold:
    """`projection`: the name the live projector claims under (projections.status_list.PROJECTION,
    not imported here: that module brings the whole projector, a worker process only folds)."""

    def __init__(self, projection: str, part: int = 0, parts: int = 1) -> None:
        self.rows: dict[str, dict[tuple[Any, ...], status_rows.Row]] = {table: {} for table in COLUMNS}
        self.claims: list[Claim] = []
        self.events = 0
        self.projection, self.part, self.parts = projection, part, parts

    def fold(self, facts: Sequence[StoredFact], *, own: bool = True) -> dict[int, list[int]]:
        """Apply a page's events, in log order, to this part's rows. `own`: the events are this
        part's aggregates' (claimed here); the answer is then, for each other part, the indexes
        of the facts that touch its rows. Else they were handed over by the part that owns them,
        and only this part's effects are applied."""
        rows, part, parts, projection = self.rows, self.part, self.parts, self.projection
        rules, none = status_rows.EFFECTS.get, ()  # status_rows.effects, a call less per event
        add_claim = self.claims.append
        elsewhere: dict[int, list[int]] = {}
        for index, f in enumerate(facts):
            if own:
                add_claim((projection, f.aggregate_id, f.version, f.event_id, f.position))
            rule = rules(f.type)
            # A StoredFact has every attribute a status_rows.Fact has: the rules take it as it is.
            for table, key, apply in rule(f) if rule is not None else none:  # type: ignore[arg-type]
                if parts > 1:
                    other = part_of(key, parts)
                    if other != part:
                        if own:
                            indexes = elsewhere.setdefault(other, [])
                            if not indexes or indexes[-1] != index:
                                indexes.append(index)
                        continue
                # The rows are the fold's own, so each rule changes them in place (`owned`).
                table_rows = rows[table]
                after = apply(table_rows.get(key), True)
                if after is not None:
                    table_rows[key] = after
        if own:
            self.events += len(facts)
        return elsewhere

    async def write_rows(self, conn: asyncpg.Connection, schema: str | None = None) -> None:
        """Fill the (empty, freshly created) tables: one COPY each (the claims: `write_claims`)."""
        for table, columns in COLUMNS.items():
            await conn.copy_records_to_table(
                table, records=_records(self.rows[table].values(), columns), columns=columns, schema_name=schema
            )

    @staticmethod
    async def write_claims(conn: asyncpg.Connection, claims: Sequence[Claim], schema: str | None = None) -> None:
        if claims:
            await conn.copy_records_to_table("projection_applied", records=claims, columns=CLAIM_COLUMNS,
                                             schema_name=schema)


async def advance_position(conn: asyncpg.Connection, projection: str, position: int) -> None:
    """The rebuilt position (read-your-writes, the lag) stands where the replay ended; never backwards."""
    await conn.execute(
        """
        INSERT INTO projection_positions (projection, position, updated_at) VALUES ($1, $2, now())
        ON CONFLICT (projection) DO UPDATE
            SET position = GREATEST(projection_positions.position, EXCLUDED.position), updated_at = now()
        """,
        projection, position,
    )


def _records(rows: Iterable[status_rows.Row], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows as COPY's tuples; what is the same for every row (the getter, the special
    columns) looked up once, not per row (a whole table is 50,000 rows and more)."""
    get, special = _getter(tuple(columns)), _special(tuple(columns))
    json_columns, to_db, dumps = status_rows.JSON_COLUMNS, status_rows.to_db, orjson.dumps
    out = []
    for row in rows:
        values = list(get(row))
        for index, column in special:
            values[index] = dumps(values[index]).decode() if column in json_columns else to_db(values[index])
        out.append(tuple(values))
    return out


@functools.cache
def _getter(columns: tuple[str, ...]) -> Callable[[status_rows.Row], tuple[Any, ...]]:
    return operator.itemgetter(*columns)


@functools.cache
def _special(columns: tuple[str, ...]) -> list[tuple[int, str]]:
    """The columns whose values are written differently: jsonb as text, and the one time that may be
    -infinity (status_rows.NEVER: a contact's updated_at)."""
    return [(i, c) for i, c in enumerate(columns) if c in status_rows.JSON_COLUMNS or c == "updated_at"]
