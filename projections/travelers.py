"""Trips' travelers, from the Trip aggregate's events (TripFirstShared, TripShared).

Two read models, written in the status list's transaction for the event (status_list.py
claims the event, then calls `record`):

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
  row, which replay's reordering between keys relies on (deploy/replay_batch.py).

Only `execute` writes, so replay can queue them; timestamps come from the events.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from contracts.access import TripFirstSharedV1, TripSharedV1


def _key(traveler: Any) -> str:
    """Who a traveler is on the trip: their account identity, else the contact id, else the name."""
    if traveler.account_id is not None:
        return f"account:{traveler.account_id}"
    if traveler.contact_id:
        return f"contact:{traveler.contact_id}"
    return f"name:{(traveler.name or '').strip().lower()}"


async def record(conn: asyncpg.Connection, msg: TripFirstSharedV1 | TripSharedV1) -> None:
    d = msg.data
    at = d.share.occurred_at
    for index, traveler in enumerate(d.travelers):
        await conn.execute(
            """
            INSERT INTO trip_travelers (workspace, trip_id, traveler_key, first_seen_at, ord, contact_id, name,
                                        email, phone, is_primary, account_id, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $4)
            ON CONFLICT (workspace, trip_id, traveler_key) DO UPDATE SET
                contact_id = COALESCE(EXCLUDED.contact_id, trip_travelers.contact_id),
                name = COALESCE(EXCLUDED.name, trip_travelers.name),
                email = COALESCE(EXCLUDED.email, trip_travelers.email),
                phone = COALESCE(EXCLUDED.phone, trip_travelers.phone),
                is_primary = EXCLUDED.is_primary,
                updated_at = EXCLUDED.updated_at
            WHERE trip_travelers.updated_at <= EXCLUDED.updated_at
            """,
            msg.workspace, d.trip_id, _key(traveler), at, index, traveler.contact_id, traveler.name,
            traveler.email, traveler.phone, traveler.primary, traveler.account_id,
        )
        if traveler.account_id is None:
            continue  # no usable email: no account could ever exist, so no row in the status list
        await conn.execute(
            """
            INSERT INTO account_status (account_id, workspace, email, name, phone, contact_id, resources, status,
                                        invited_at, updated_at)
            VALUES ($1, $2, lower(btrim($3)), $4, $5, $6, $7::jsonb, 'not_invited', $8, '-infinity')
            ON CONFLICT (account_id) DO UPDATE SET
                -- A sorted set: trips arrive on different partitions in any order, and replay must match.
                resources = (SELECT jsonb_agg(DISTINCT r ORDER BY r)
                             FROM jsonb_array_elements(account_status.resources || EXCLUDED.resources) r),
                invited_at = LEAST(account_status.invited_at, EXCLUDED.invited_at)
            WHERE account_status.status = 'not_invited'
            """,
            traveler.account_id, msg.workspace, traveler.email, traveler.name, traveler.phone,
            traveler.contact_id, json.dumps([{"type": "trip", "id": d.trip_id}]), at,
        )


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
