"""A database of its own, on the session's PostgreSQL server, for a test that reads the whole
notification log (a relay re-publishing from the start, a log follower from position 0):
in the shared database that log holds every other test's events too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlparse, urlunparse

import asyncpg
import pytest

from deploy.migrate import migrate_database
from tests.helpers import unique


@pytest.fixture
async def own_database(migrated: str) -> AsyncIterator[str]:
    name = unique("db").replace("-", "_")
    admin = await asyncpg.connect(migrated)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = urlunparse(urlparse(migrated)._replace(path=f"/{name}"))
        await migrate_database(url)
        yield url
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
