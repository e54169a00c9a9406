"""`porchlight migrate`: everything a fresh PostgreSQL and broker need before services start.

Idempotent: run it on every deploy (and `porchlight dev` runs it at each start).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg

from contracts import topics
from services.common.database import apply_schema, eventsourcing_env
from services.common.kafka import ensure_topics

log = logging.getLogger(__name__)

_ROOT = Path(__file__).resolve().parent.parent

# Each component owns its tables; order matters only where one refers to another.
SCHEMA_FILES = {
    "common": _ROOT / "services" / "common" / "schema.sql",
    "invite_service": _ROOT / "services" / "invite_service" / "schema.sql",
    "notifier": _ROOT / "services" / "notifier" / "schema.sql",
    "gmail_tokens": _ROOT / "services" / "common" / "gmail_tokens.sql",
    "projections": _ROOT / "projections" / "schema.sql",
}


def create_event_store(database_url: str) -> None:
    """The eventsourcing library creates its own table and insert function on first use."""
    from services.invite_service.application import PortalAccess

    app = PortalAccess(env=eventsourcing_env(database_url, CREATE_TABLE="y"))
    app.close()


async def migrate_database(database_url: str) -> list[str]:
    await asyncio.to_thread(create_event_store, database_url)
    conn = await asyncpg.connect(database_url)
    try:
        return await apply_schema(conn, {k: v for k, v in SCHEMA_FILES.items() if v.exists()})
    finally:
        await conn.close()


async def migrate(database_url: str, bootstrap_servers: str, topic_names: list[str] | None = None) -> None:
    applied = await migrate_database(database_url)
    created = await ensure_topics(bootstrap_servers, topic_names or list(topics.ALL))
    log.info("migrated: schemas %s; topics created %s", applied, created or "none")
