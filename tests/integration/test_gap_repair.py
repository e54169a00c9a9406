"""A lost message is repaired from the event store, never silently skipped.

Real events are written through the Application; the projector (real broker) is sent an
account's version 2 without its version 1, as if the broker had lost it. It notices the
jump, reads version 1 back from the event store, applies it first, then version 2.
"""

from __future__ import annotations

import asyncio

import pytest

from projections import status_list
from projections.main import run
from projections.projector import Projector
from services.common.database import eventsourcing_env
from services.common.kafka import create_producer
from services.common.metrics import PROJECTOR_GAPS
from services.common.settings import ProjectorSettings
from services.invite_service.application import InviteCommand, PortalAccess
from services.invite_service.envelopes import to_envelope
from services.invite_service.stored_envelopes import StoredEnvelopes, event_store_reader
from tests.conftest import SECRET_KEY
from tests.helpers import poll_until, unique
from tests.integration.envelopes import AccountStory, project

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}


@pytest.fixture
def access(migrated):
    app = PortalAccess(eventsourcing_env(migrated), secret_key=SECRET_KEY.encode())
    yield app
    app.close()


async def _claimed_account(access: PortalAccess):
    """An invited and claimed account: AccountCreated v1 and AccountActivated v2 in the store."""
    ws = unique("ws")
    await access.configure_workspace(ws, {"plan": "pro", "name": "Pride Travelers"}, STAFF)
    email = f"{unique('gap')}@example.com"
    invited = await access.invite(ws, InviteCommand(email=email, name="Gail Gap", role="customer"), STAFF)
    token = access.claim_link("http://x", access.repository.get(invited.invitation_id)).rsplit("/", 1)[1]
    await access.claim(ws, token)
    return ws, email, invited


def _envelopes(access: PortalAccess, ws: str, invited) -> dict[tuple, object]:
    """Every stored event of the account and its invitation, as the relay publishes them."""
    mine = {invited.account_id, invited.invitation_id}
    found = {}
    for notification in access.recorder.select_notifications(1, 1_000_000):
        if notification.originator_id in mine:
            event = access.mapper.to_domain_event(notification)
            envelope = to_envelope(event, notification.id, (ws, invited.account_id))
            found[(envelope.type, envelope.aggregate_version)] = envelope
    return found


@pytest.fixture
async def projector(base_env, monkeypatch):
    for name, value in base_env.items():
        monkeypatch.setenv(name, value)
    settings = ProjectorSettings(projector_group_id=unique("projector"))
    task = asyncio.create_task(run(settings, event_store_reader))
    yield settings
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_lost_version_is_read_back_from_the_event_store(access, projector, pg_pool, kafka_bootstrap, topic_names):
    ws, email, invited = await _claimed_account(access)
    events = _envelopes(access, ws, invited)
    created, activated = events[("AccountCreated", 1)], events[("AccountActivated", 2)]
    gaps_before = PROJECTOR_GAPS._value.get()

    producer = create_producer(kafka_bootstrap)
    await producer.start()
    try:  # the broker "lost" AccountCreated: only the invite and the activation arrive
        for envelope in (events[("InviteSent", 1)], activated):
            await producer.send_and_wait(
                topic_names["access"], envelope.model_dump_json().encode(), key=envelope.key, headers=envelope.headers
            )
    finally:
        await producer.stop()

    async def active():
        row = await pg_pool.fetchrow("SELECT * FROM account_status WHERE account_id = $1", invited.account_id)
        return row if row is not None and row["status"] == "active" else None

    row = await poll_until(active, what="the activated account in the status list")
    # What only AccountCreated carries is there: it was applied, from the store, before the activation.
    assert (row["email"], row["name"], row["role"]) == (email, "Gail Gap", "customer")
    applied = await pg_pool.fetch(
        "SELECT version, position, event_id FROM projection_applied WHERE projection = 'status_list' "
        "AND aggregate_id = $1 ORDER BY version",
        invited.account_id,
    )
    assert [(r["version"], r["position"], r["event_id"]) for r in applied] == [
        (1, created.position, created.event_id), (2, activated.position, activated.event_id)
    ]
    assert PROJECTOR_GAPS._value.get() == gaps_before + 1

    # The lost message turning up late changes nothing: it was applied once, by the repair.
    assert await project(pg_pool, created) == [False]


async def test_a_gap_the_store_cannot_fill_is_refused_not_skipped(pg_pool):
    story = AccountStory(unique(), f"{unique('nogap')}@example.com")
    created, activated = story.created(), story.activated()  # created never stored anywhere
    projector = Projector(pg_pool, event_source=StoredEnvelopes(None, pg_pool))  # type: ignore[arg-type]
    with pytest.raises(status_list.GapNotRepaired):
        await status_list.on_account_activated(activated, projector)
    assert await pg_pool.fetchval(
        "SELECT count(*) FROM projection_applied WHERE aggregate_id = $1", story.account_id
    ) == 0
    # In order, both apply.
    assert await project(pg_pool, created, activated) == [True, True]
