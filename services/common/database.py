"""PostgreSQL connection details in the shapes our two drivers want.

The event store goes through the eventsourcing library (psycopg, configured by an `env`
mapping); everything else uses asyncpg. Both are built from the one `DATABASE_URL`,
which may name a TCP host or a socket directory (`?host=/path`, as embedded servers give).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import asyncpg

EVENT_STORE_NAME = "porchlight"  # the library names its table after this: porchlight_events


def eventsourcing_env(database_url: str, **extra: str) -> dict[str, str]:
    """The library's `env` for `eventsourcing.postgres`, from a PostgreSQL URL."""
    parsed = urlparse(database_url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parsed.scheme!r}")
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
    port = str(query.get("port", [parsed.port or 5432])[0])
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": port,
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        # The library's insert function does the table lock, NOTIFY and insert in one round trip.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
        "POSTGRES_POOL_SIZE": "8",
        "POSTGRES_MAX_OVERFLOW": "8",
        "POSTGRES_LOCK_TIMEOUT": "5",
        # `porchlight migrate` creates the tables (CREATE_TABLE=y there). Processes that all ran
        # the library's CREATE TABLE IF NOT EXISTS at start raced each other's catalog updates
        # ("tuple concurrently updated") when two API replicas started together.
        "CREATE_TABLE": "n",
    }
    env.update(extra)
    return env


def asyncpg_connect_args(env: Mapping[str, str]) -> dict[str, object]:
    """asyncpg's `connect` arguments for the database an `eventsourcing_env` names (for a process
    handed the library's env rather than the URL: replay's workers)."""
    return {
        "host": env["POSTGRES_HOST"], "port": int(env["POSTGRES_PORT"]), "user": env["POSTGRES_USER"],
        "password": env.get("POSTGRES_PASSWORD") or None, "database": env["POSTGRES_DBNAME"],
    }


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier (a schema or table name that is not ours to choose), quoted."""
    return '"' + name.replace('"', '""') + '"'


def describe(database_url: str) -> str:
    """The URL without its password, for log lines."""
    parsed = urlparse(database_url)
    host = parse_qs(parsed.query).get("host", [parsed.hostname or ""])[0]
    return f"{parsed.username or 'postgres'}@{host}{':' + str(parsed.port) if parsed.port else ''}{parsed.path}"


async def create_pool(
    database_url: str, *, min_size: int = 1, max_size: int = 10, session_state: bool = True
) -> asyncpg.Pool:
    """`session_state=False` for a process that leaves no session state on a released
    connection (no SET, session advisory lock, open cursor or LISTEN): asyncpg's reset on
    release (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) is then a round trip to
    PostgreSQL per statement run through the pool, for nothing. An open transaction is still
    rolled back on release."""
    reset = None if session_state else _no_session_state
    return await asyncpg.create_pool(database_url, min_size=min_size, max_size=max_size, reset=reset)


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """The pool's reset where there is nothing to undo (see create_pool)."""


async def apply_schema(conn: asyncpg.Connection, sql_files: Mapping[str, Path]) -> list[str]:
    """Apply each component's idempotent schema file, serialised by an advisory lock.

    Schema files use `CREATE ... IF NOT EXISTS`; the lock keeps two processes that
    start at once from racing on the same DDL.
    """
    applied = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('porchlight-migrate'))")
        for name, path in sql_files.items():
            await conn.execute(path.read_text())
            applied.append(name)
    return applied
