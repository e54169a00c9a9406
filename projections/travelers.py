"""Trips' travelers, from the Trip aggregate's events (TripFirstShared, TripShared).

Two read models, written in the status list's transaction for the event (status_list.py
claims the event, then folds it into the rows as projections/status_rows.py says, which
replay applies too):

- `trip_travelers`: per trip, each traveler seen in its shares, in the order first seen.
  A traveler's portal state is not stored here: the travelers strip reads it from
  `account_status` through the account id the write side derived from the email, so an
  invite, claim or disable shows at once without touching the trip.
- `account_status` rows with status `not_invited` for contacts seen in shares that have no
  account yet, with the trips they travel on as `trip` resources (sorted, whatever the order
  the trips' events arrive in). AccountCreated or
  InviteSent turns such a row pending (status_list.py); a row of an existing account is
  never touched here. Its `updated_at` is -infinity (no account event has changed it), so the
  first account event sets it as it would on a fresh row. Either order of a trip event and an account event ends in the same
  row, which replay's reordering between keys relies on. Timestamps come from the events.
"""

from __future__ import annotations

from typing import Any

import asyncpg


async def trip_travelers(pool: asyncpg.Pool, workspace: str, trip_id: str) -> list[dict[str, Any]]:
    """A trip's travelers in the order first seen, each with their portal state now."""
    rows = await pool.fetch(
        """
        SELECT t.contact_id, t.name, t.email, t.phone, t.is_primary AS primary, t.account_id,
               COALESCE(s.status, 'not_invited') AS status
        FROM trip_travelers t LEFT JOIN account_status s ON s.account_id = t.account_id
        WHERE t.workspace = $1 AND t.trip_id = $2
        ORDER BY t.first_seen_at, t.ord, t.traveler_key
        """,
        workspace, trip_id,
    )
    return [dict(row) for row in rows]
