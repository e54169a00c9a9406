"""The record of what each projection has applied: the guard that makes redelivery harmless,
and the per-aggregate versions that show a gap."""

from __future__ import annotations

import uuid

import asyncpg


class GapFound(Exception):
    """An aggregate's version n arrived while n-1 was never applied: a message was lost."""

    def __init__(self, projection: str, aggregate_id: uuid.UUID, version: int) -> None:
        super().__init__(f"{projection}: {aggregate_id} v{version} arrived before v{version - 1} was applied")
        self.projection, self.aggregate_id, self.version = projection, aggregate_id, version


async def record_applied(
    conn: asyncpg.Connection,
    projection: str,
    aggregate_id: uuid.UUID,
    version: int,
    event_id: uuid.UUID | None,
    position: int | None = None,
    *,
    check_previous: bool = False,
    track_position: bool = True,
) -> bool:
    """Claim (projection, aggregate, version) inside the caller's transaction.

    False when it was already applied: the caller must then change nothing. Because the
    claim and the read-model update commit together, a crash between them cannot leave
    one without the other. With `check_previous`, a claim whose version n-1 was never
    applied raises GapFound (in the same round trip), and the caller's transaction must roll back.
    A claimed `position` also raises the projection's highest applied position (positions.py),
    unless the caller records that itself once per batch (`track_position=False`).
    """
    row = await conn.fetchrow(
        """
        WITH claimed AS (
            INSERT INTO projection_applied (projection, aggregate_id, version, event_id, position)
            VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true
        ), moved AS (
            INSERT INTO projection_positions (projection, position, updated_at)
            SELECT $1, $5, now() WHERE $7 AND $5::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM claimed)
            ON CONFLICT (projection) DO UPDATE
                SET position = GREATEST(projection_positions.position, EXCLUDED.position), updated_at = now()
        )
        SELECT EXISTS (SELECT 1 FROM claimed) AS applied,
               (NOT $6 OR $3 = 1 OR EXISTS (SELECT 1 FROM projection_applied
                                             WHERE projection = $1 AND aggregate_id = $2 AND version = $3 - 1))
               AS has_previous
        """,
        projection,
        aggregate_id,
        version,
        event_id,
        position,
        check_previous,
        track_position,
    )
    if row["applied"] and not row["has_previous"]:
        raise GapFound(projection, aggregate_id, version)
    return bool(row["applied"])


async def applied_versions(
    conn: asyncpg.Pool | asyncpg.Connection, projection: str, aggregate_id: uuid.UUID, below: int
) -> set[int]:
    rows = await conn.fetch(
        "SELECT version FROM projection_applied WHERE projection = $1 AND aggregate_id = $2 AND version < $3",
        projection,
        aggregate_id,
        below,
    )
    return {r["version"] for r in rows}
