"""The event store's recorder, able to commit rows of our own tables with a command's events.

Claiming a link spends it (TokenClaimed) and starts a session. Written one after the
other, a failure in between left the link spent and the client without a session. Here
the session row goes into the same PostgreSQL transaction as the events: both commit or
neither does.

The library passes keyword arguments from `EventStore.put` down to the recorder's
`insert_events` (its process recorder stores tracking records that way); `side_rows` is
ours. The recorder is plugged in through the library's `APPLICATION_RECORDER_TOPIC`
setting (see `PortalAccess.__init__`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry


@dataclass(frozen=True)
class SideRow:
    """One statement (psycopg `%s` placeholders) to run in the transaction of a command's events."""

    sql: str
    params: tuple[Any, ...]


class SideRowRecorder(PostgresApplicationRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], *, side_rows: Sequence[SideRow] = (), **kwargs: Any
    ) -> Sequence[int] | None:
        if not side_rows:  # the common case (invites): the library's own path, unchanged
            return super().insert_events(stored_events, **kwargs)
        return self._insert_with_side_rows(stored_events, side_rows)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_with_side_rows(self, stored_events: Sequence[StoredEvent], side_rows: Sequence[SideRow]) -> Sequence[int]:
        # Side rows first: the events' insert is what orders the log (and, without the
        # library's database functions, takes the table lock), so it comes last and the
        # lock is held for the shortest time.
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            for row in side_rows:
                curs.execute(row.sql, row.params)
            if not self.datastore.enable_db_functions:
                self._insert_stored_events(curs, stored_events)
                return list(self._fetch_ids_after_insert_events(curs, stored_events) or [])
            pg_events = [
                self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                for e in stored_events
            ]
            curs.execute(self.sql_invoke_pg_function_insert_events, (pg_events,), prepare=True)
            return [row[self.pg_function_name_insert_events] for row in curs.fetchall()]
