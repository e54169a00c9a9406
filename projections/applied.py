"""The record of what each projection has applied: the guard that makes redelivery harmless."""

from __future__ import annotations

import uuid

import asyncpg


async def record_applied(
    conn: asyncpg.Connection, projection: str, aggregate_id: uuid.UUID, version: int, event_id: uuid.UUID | None
) -> bool:
    """Claim (projection, aggregate, version) inside the caller's transaction.

    False when it was already applied: the caller must then change nothing. Because the
    claim and the read-model update commit together, a crash between them cannot leave
    one without the other.
    """
    inserted = await conn.fetchval(
        "INSERT INTO projection_applied (projection, aggregate_id, version, event_id) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING true",
        projection,
        aggregate_id,
        version,
        event_id,
    )
    return bool(inserted)
