"""The travelers strip and `not_invited` rows, end to end: share event → autoinvite → event store →
relay → broker → projector → the query API."""

from __future__ import annotations

import asyncio
import json

import pytest

from projections.main import run as run_projector
from services.autoinvite.main import run as run_autoinvite
from services.common.database import eventsourcing_env
from services.common.kafka import ensure_topics
from services.common.log_follower import save_position
from services.common.settings import AutoinviteSettings, ProjectorSettings
from services.invite_service.application import PortalAccess
from services.invite_service.relay import Relay
from tests.helpers import poll_until, unique
from tests.integration.conftest import auth
from tests.integration.databases import own_database  # noqa: F401 - fixture of `live`
from tests.integration.test_autoinvite import person, publish, share
from tests.integration.test_replay import live, projected_everything  # noqa: F401 - `live` is a fixture
from contracts.shares import Traveler
from deploy.replay import Replay
from services.invite_service.application import InviteCommand

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}


@pytest.fixture
async def pipeline(migrated, pg_pool, base_env, kafka_bootstrap, topic_names, monkeypatch):
    """Autoinvite, relay (from the log's current end) and projector, on this test's topics."""
    shares_topic = unique("test.shares")
    await ensure_topics(kafka_bootstrap, [shares_topic])
    for name, value in {**base_env, "TRIP_SHARES_TOPIC": shares_topic}.items():
        monkeypatch.setenv(name, value)
    access = PortalAccess(eventsourcing_env(migrated))
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    tasks = [
        asyncio.create_task(run_projector(ProjectorSettings(projector_group_id=unique("projector")))),
        asyncio.create_task(Relay(access, pg_pool, kafka_bootstrap, topic_names["access"], relay_name).run()),
        asyncio.create_task(run_autoinvite(AutoinviteSettings(autoinvite_group_id=unique("autoinvite")))),
    ]
    yield shares_topic
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    access.close()


async def test_travelers_strip_and_not_invited_rows(api, staff_token, pipeline, kafka_bootstrap):
    ws = unique("ws")
    headers = auth(staff_token(ws))
    created = await api.put(f"/v1/workspaces/{ws}", headers=headers, json={
        "name": "Pride Travelers", "plan": "pro", "portal_enabled": True, "auto_invite_on_first_share": True})
    assert created.status_code == 201, created.text
    ana, ben, cy = person("Ana", primary=True), person("Ben"), Traveler(contact_id="c-cy", name="Cy")
    await publish(kafka_bootstrap, pipeline, share(ws, "T-1", ana, ben, cy))

    async def strip(trip: str, expected: list[str]):
        response = await api.get(f"/v1/workspaces/{ws}/trips/{trip}/travelers", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return body if [t["status"] for t in body["travelers"]] == expected else None

    body = await poll_until(lambda: strip("T-1", ["pending", "not_invited", "not_invited"]), what="the strip")
    assert [(t["name"], t["email"], t["primary"]) for t in body["travelers"]] == [
        ("Ana", ana.email, True), ("Ben", ben.email, False), ("Cy", None, False)]
    assert [t["actions"] for t in body["travelers"]] == [["resend", "revoke"], ["invite"], ["invite"]]
    assert body["travelers"][2]["account_id"] is None

    # Ben, seen in shares and never invited, is in the status list as not_invited with his trips.
    # (On T-2 the candidate is Ana again, who has an account: nobody is invited.)
    await publish(kafka_bootstrap, pipeline, share(ws, "T-2", ana, ben))
    await poll_until(lambda: strip("T-2", ["pending", "not_invited"]), what="the second trip's strip")

    async def not_invited():
        listed = (await api.get(f"/v1/workspaces/{ws}/accounts", headers=headers,
                                params={"status": "not_invited"})).json()["items"]
        return listed if listed and len(listed[0]["resources"]) == 2 else None

    rows = await poll_until(not_invited, what="Ben's not_invited row with both trips")
    assert [(r["email"], r["status"], r["actions"]) for r in rows] == [(ben.email, "not_invited", ["invite"])]
    assert rows[0]["resources"] == [{"type": "trip", "id": "T-1"}, {"type": "trip", "id": "T-2"}]
    summary = (await api.get(f"/v1/workspaces/{ws}/accounts/summary", headers=headers)).json()
    assert (summary["not_invited"], summary["pending"]) == (1, 1)

    # The auto-invite's actor, in Ana's history: the system, with the share as cause.
    ana_id = body["travelers"][0]["account_id"]
    history = (await api.get(f"/v1/workspaces/{ws}/accounts/{ana_id}/history", headers=headers)).json()["events"]
    actor = history[0]["actor"]
    assert actor["kind"] == "system" and actor["cause"]["trip_id"] == "T-1" and actor["cause"]["shared_by"] == "agent-7"

    # Inviting Ben later turns his row pending, in the list and on both strips.
    invited = await api.post(f"/v1/workspaces/{ws}/invitations", headers=headers,
                             json={"email": ben.email, "name": "Ben", "role": "customer"})
    assert invited.status_code == 201, invited.text
    await poll_until(lambda: strip("T-1", ["pending", "pending", "not_invited"]), what="Ben pending on the strip")
    await poll_until(lambda: strip("T-2", ["pending", "pending"]), what="Ben pending on the other strip")
    listed = (await api.get(f"/v1/workspaces/{ws}/accounts", headers=headers,
                            params={"status": "not_invited"})).json()["items"]
    assert listed == []
    row = (await api.get(f"/v1/workspaces/{ws}/accounts", headers=headers, params={"email": ben.email})).json()["items"]
    assert [(r["status"], r["invited_by"]) for r in row] == [("pending", "staff-1")]


async def test_replay_rebuilds_the_travelers_and_not_invited_rows_as_live(live):
    """Trip events through the live projector, then `porchlight replay`: the same rows."""
    app, pool, _ = live
    ws = unique("ws")
    await app.configure_workspace(ws, {"plan": "pro", "auto_invite_on_first_share": True}, STAFF)
    ana, ben, dee = person("Ana", primary=True), person("Ben"), person("Dee", primary=True)
    await app.invite(ws, InviteCommand(email=dee.email, name="Dee", role="customer"), STAFF)  # has an account
    for trip in (share(ws, "T-1", ana, ben, Traveler(name="Cy")), share(ws, "T-2", dee, ben),
                 share(ws, "T-1", ben, kind="proposal"), share(ws, "T-3", dee, ben)):
        await app.auto_invite(trip)
    await poll_until(lambda: projected_everything(app, pool), what="the live projection")
    live_rows = await _rows(pool, ws)
    statuses = {r["email"]: r["status"] for r in live_rows["account_status"]}
    assert statuses == {ana.email: "pending", ben.email: "not_invited", dee.email: "pending"}
    ben_row = next(r for r in live_rows["account_status"] if r["email"] == ben.email)
    assert [r["id"] for r in json.loads(ben_row["resources"])] == ["T-1", "T-2", "T-3"]
    assert len(live_rows["trip_travelers"]) == 7

    await Replay(app, pool, page_size=3).run()  # small pages: trip and account events in different waves

    assert await _rows(pool, ws) == live_rows


async def _rows(pool, ws: str) -> dict[str, list[dict]]:
    return {
        "account_status": [dict(r) for r in await pool.fetch(
            "SELECT * FROM account_status WHERE workspace = $1 ORDER BY account_id", ws)],
        "trip_travelers": [dict(r) for r in await pool.fetch(
            "SELECT * FROM trip_travelers WHERE workspace = $1 ORDER BY trip_id, traveler_key", ws)],
    }
