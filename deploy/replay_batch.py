"""Replay's read models in memory: the log folded into rows, then written at once.

Each stored event's facts (services/invite_service/stored_facts.py) go through the same
rules the live projector applies (projections/status_rows.py: what an event does to a
row); the rows stay in memory until the whole log is folded, then each table is filled with
one COPY, with every event's applied-record and the projection's position. A row touched
by many events is written once, and nothing waits on PostgreSQL per event.

The swap's tail (events committed during the build) is folded on top, into an overlay, and
the rows it touched are upserted in the swap's transaction; if that transaction rolls back,
the overlay is dropped with it and the tail is folded again.
"""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg
import orjson

from projections import status_list, status_rows
from services.invite_service.stored_facts import StoredFact

CLAIM_COLUMNS = ("projection", "aggregate_id", "version", "event_id", "position")
COLUMNS = {status_rows.ACCOUNTS: status_rows.ACCOUNT_COLUMNS, status_rows.TRAVELERS: status_rows.TRAVELER_COLUMNS}
Claim = tuple[str, uuid.UUID, int, str, int]  # the event id as hex digits: asyncpg takes them


class ReadModelFold:
    def __init__(self) -> None:
        self.rows: dict[str, dict[tuple[Any, ...], status_rows.Row]] = {table: {} for table in COLUMNS}
        self.claims: list[Claim] = []
        self.events = 0
        self._overlay: dict[str, dict[tuple[Any, ...], status_rows.Row]] | None = None

    def take_claims(self) -> list[Claim]:
        """The claims folded so far, handed over to be written."""
        claims, self.claims = self.claims, []
        return claims

    def fold(self, facts: Sequence[StoredFact]) -> None:
        """Apply a page's events, in log order, to the rows (or to the overlay, in the swap)."""
        rows, overlay = self.rows, self._overlay
        claims = self.claims
        projection = status_list.PROJECTION
        rules, none = status_rows.EFFECTS.get, ()  # status_rows.effects, a call less per event
        add_claim = claims.append
        for f in facts:
            add_claim((projection, f.aggregate_id, f.version, f.event_id, f.position))
            rule = rules(f.type)
            # A StoredFact has every attribute a status_rows.Fact has: the rules take it as it is.
            for table, key, apply in rule(f) if rule is not None else none:  # type: ignore[arg-type]
                # The rows are the fold's own, so each rule changes them in place (`owned`), except
                # the built rows under the swap's overlay: those are copied into it first (the
                # overlay is dropped if the swap rolls back).
                if overlay is None:
                    table_rows = rows[table]
                    after = apply(table_rows.get(key), True)
                    if after is not None:
                        table_rows[key] = after
                else:
                    changed = overlay[table]
                    if key in changed:
                        after = apply(changed[key], True)
                    else:
                        after = apply(rows[table].get(key), False)
                    if after is not None:
                        changed[key] = after
        self.events += len(facts)

    async def write_rows(self, conn: asyncpg.Connection) -> None:
        """Fill the (empty, freshly created) tables: one COPY each (the claims: `write_claims`)."""
        for table, columns in COLUMNS.items():
            await conn.copy_records_to_table(
                table, records=_records(self.rows[table].values(), columns), columns=columns
            )

    def begin_tail(self) -> None:
        self._overlay = {table: {} for table in COLUMNS}
        self._tail_claims_from = len(self.claims)

    def drop_tail(self) -> None:
        """The swap's transaction rolled back: forget what the tail folded."""
        self._overlay = None
        del self.claims[self._tail_claims_from:]

    async def write_tail(self, conn: asyncpg.Connection) -> None:
        """Upsert the rows the tail touched (the claims are new: the tail's events were not in the build).
        The overlay stays apart from the rows: the swap's transaction may still roll back (drop_tail)."""
        assert self._overlay is not None
        for table, changed in self._overlay.items():
            if not changed:
                continue
            columns, keys = COLUMNS[table], status_rows.KEYS[table]
            values = ", ".join(f"${i}::jsonb" if c in status_rows.JSON_COLUMNS else f"${i}"
                               for i, c in enumerate(columns, 1))
            await conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) ON CONFLICT ({', '.join(keys)}) "
                f"DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in columns if c not in keys)}",
                _records(changed.values(), columns),
            )
        await self.write_claims(conn, self.claims[self._tail_claims_from:])

    @staticmethod
    async def write_claims(conn: asyncpg.Connection, claims: list[Claim]) -> None:
        if not claims:
            return
        await conn.copy_records_to_table("projection_applied", records=claims, columns=CLAIM_COLUMNS)
        # The rebuilt position (read-your-writes, the lag) stands where the replay ended; never backwards.
        await conn.execute(
            """
            INSERT INTO projection_positions (projection, position, updated_at) VALUES ($1, $2, now())
            ON CONFLICT (projection) DO UPDATE
                SET position = GREATEST(projection_positions.position, EXCLUDED.position), updated_at = now()
            """,
            status_list.PROJECTION, max(claim[4] for claim in claims),
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
