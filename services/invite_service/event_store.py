"""The event store's recorder, able to commit rows of our own tables with a command's events.

Claiming a link spends it (TokenClaimed) and starts a session. Written one after the
other, a failure in between left the link spent and the client without a session. Here
the session row goes into the same PostgreSQL transaction as the events: both commit or
neither does.

The library passes keyword arguments from `EventStore.put` down to the recorder's
`insert_events` (its process recorder stores tracking records that way); `side_rows` is
ours. The recorder is plugged in through the library's `APPLICATION_RECORDER_TOPIC`
setting (see `PortalAccess.__init__`).

Events are inserted as four arrays in binary format, `unnest`ed in one INSERT, rather than
through the library's insert function, which takes one array of a composite type that
psycopg can only send as escaped text: that cost 69 ms of CPU per 1,000 events here, the
arrays 8 ms, and a 10,000-row bulk invite stores 20,000 events. The statements are those
of the library's function (lock timeout, one NOTIFY, the INSERT in the same order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal


@dataclass(frozen=True)
class SideRow:
    """One statement (psycopg `%s` placeholders) to run in the transaction of a command's events."""

    sql: str
    params: tuple[Any, ...]


class SideRowRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema, table = Identifier(self.datastore.schema), Identifier(self.events_table_name)
        self._sql_begin_insert = SQL("SET LOCAL lock_timeout = {timeout}; NOTIFY {channel}").format(
            timeout=Literal(f"{self.datastore.lock_timeout}s"), channel=Identifier(self.channel_name)
        )
        self._sql_insert_arrays = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::uuid[], %b::int8[], %b::text[], %b::bytea[]) RETURNING notification_id"
        ).format(schema=schema, table=table)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], *, side_rows: Sequence[SideRow] = (), **kwargs: Any
    ) -> Sequence[int] | None:
        # Side rows first: the events' insert is what orders the log, so it comes last.
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            for row in side_rows:
                curs.execute(row.sql, row.params)
            if not stored_events:
                return []
            curs.execute(self._sql_begin_insert)
            columns = (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            )
            curs.execute(self._sql_insert_arrays, columns, prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]
