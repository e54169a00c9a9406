"""The event store's recorder commits a command's side rows in the same transaction as its
events: both are stored, or neither. Checked with and without the library's database
functions (the API turns them on; the library's default is off)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.persistence import PersistenceError

from services.common.database import eventsourcing_env
from services.invite_service.application import InviteCommand, PortalAccess
from services.invite_service.domain.errors import WorkspaceNotFound
from services.invite_service.domain.workspace import Workspace
from services.invite_service.event_store import SideRow
from tests.conftest import SECRET_KEY
from tests.helpers import unique

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}


@pytest.fixture(params=["y", "n"], ids=["db-functions", "plain-inserts"])
def access(migrated, request):
    app = PortalAccess(eventsourcing_env(migrated, POSTGRES_ENABLE_DB_FUNCTIONS=request.param), secret_key=SECRET_KEY.encode())
    yield app
    app.close()


def _session_row(marker: bytes) -> SideRow:
    return SideRow(
        "INSERT INTO portal_sessions (session_hash, workspace, account_id, access_epoch, method, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (marker, "ws", uuid4(), 0, "test", datetime.now(UTC) + timedelta(days=1)),
    )


async def test_events_and_side_rows_commit_together(access, pg_pool):
    ws = unique("ws")
    workspace = Workspace(slug=ws, settings={}, actor=STAFF)
    marker = uuid4().bytes
    recordings = await asyncio.to_thread(access.events.put, workspace.collect_events(), side_rows=[_session_row(marker)])
    stored_at = await pg_pool.fetchval("SELECT notification_id FROM porchlight_events WHERE originator_id = $1", workspace.id)
    assert recordings[0].notification.id == stored_at  # the position a command reports is its events' own
    assert await pg_pool.fetchval("SELECT count(*) FROM portal_sessions WHERE session_hash = $1", marker) == 1


async def test_a_failing_side_row_stores_none_of_the_events(access, pg_pool):
    ws = unique("ws")
    workspace = Workspace(slug=ws, settings={}, actor=STAFF)
    marker = uuid4().bytes
    with pytest.raises(PersistenceError):
        await asyncio.to_thread(
            access.events.put, workspace.collect_events(), side_rows=[_session_row(marker), SideRow("SELECT 1 / 0", ())]
        )
    with pytest.raises(WorkspaceNotFound):
        access.get_workspace(ws)
    assert await pg_pool.fetchval("SELECT count(*) FROM portal_sessions WHERE session_hash = $1", marker) == 0


async def test_a_claim_stores_its_session_in_either_mode(access, pg_pool):
    ws = unique("ws")
    await access.configure_workspace(ws, {"plan": "pro"}, STAFF)
    invited = await access.invite(ws, InviteCommand(email="ana@example.com", name="Ana", role="customer"), STAFF)
    token = access.claim_link("http://x", access.repository.get(invited.invitation_id)).rsplit("/", 1)[1]
    claimed = await access.claim(ws, token)
    assert claimed.position > invited.position
    assert await pg_pool.fetchval("SELECT count(*) FROM portal_sessions WHERE account_id = $1", claimed.account_id) == 1
