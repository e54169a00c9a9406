"""Read-your-writes: a read with `min_position` answers once the projection has applied the
event at that position, and 503 `not_caught_up` (with Retry-After) when it does not in time."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi import FastAPI

from projections import query_api
from projections.main import run
from projections.positions import lag
from services.common.database import eventsourcing_env
from services.common.log_follower import save_position
from services.common.settings import ProjectorSettings
from services.common.staff_auth import make_staff_token
from services.common.problems import Problem, handle_problem
from services.invite_service.application import PortalAccess
from services.invite_service.relay import Relay
from tests.conftest import STAFF_JWT_SECRET
from tests.helpers import unique
from tests.integration.conftest import auth
from tests.integration.envelopes import AccountStory, project


@pytest.fixture
async def client(pg_pool):
    app = FastAPI()
    app.include_router(query_api.router)
    app.add_exception_handler(Problem, handle_problem)
    app.state.read_pool = pg_pool
    app.state.staff_jwt_secret = STAFF_JWT_SECRET
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
        yield client


def _auth(ws: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_staff_token(STAFF_JWT_SECRET, sub='staff-1', ws=ws, role='viewer')}"}


async def test_a_read_waits_for_its_position_then_shows_the_write(client, pg_pool):
    story = AccountStory(unique(), f"{unique('ryw')}@example.com")
    created, sent = story.created(), story.invite_sent()
    reads = [
        asyncio.create_task(client.get(path, params={"min_position": sent.position}, headers=_auth(story.workspace)))
        for path in (
            f"/v1/workspaces/{story.workspace}/accounts",
            f"/v1/workspaces/{story.workspace}/accounts/summary",
            f"/v1/workspaces/{story.workspace}/accounts/{story.account_id}",
        )
    ]
    done, _ = await asyncio.wait(reads, timeout=0.3)
    assert not done, "answered before the projection applied the write"

    assert await project(pg_pool, created, sent) == [True, True]
    listed, counts, account = [r.json() for r in await asyncio.gather(*reads)]
    assert [item["email"] for item in listed["items"]] == [story.email]
    assert counts["pending"] == 1
    assert account["status"] == "pending"


async def test_a_position_never_applied_answers_503_with_retry_after(client, pg_pool):
    story = AccountStory(unique(), f"{unique('late')}@example.com")
    never = story.created()  # the projector is not running: nobody applies it
    response = await client.get(
        f"/v1/workspaces/{story.workspace}/accounts", params={"min_position": never.position + 10**9},
        headers=_auth(story.workspace),
    )
    assert response.status_code == 503
    assert response.json()["code"] == "not_caught_up"
    assert response.headers["retry-after"] == "1"


async def test_a_stranger_is_refused_at_once_not_after_the_wait(client):
    ws = unique()
    response = await client.get(f"/v1/workspaces/{ws}/accounts", params={"min_position": 10**12})
    assert response.status_code == 401


async def test_the_position_an_invite_answers_is_readable_end_to_end(
    api, staff_token, pro_workspace, migrated, pg_pool, base_env, kafka_bootstrap, topic_names, monkeypatch
):
    """HTTP invite → event store → relay → broker → projector → the list, with the invite's position."""
    access = PortalAccess(eventsourcing_env(migrated))
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    for name, value in base_env.items():
        monkeypatch.setenv(name, value)
    projector = asyncio.create_task(run(ProjectorSettings(projector_group_id=unique("projector"))))
    relay = asyncio.create_task(Relay(access, pg_pool, kafka_bootstrap, topic_names["access"], relay_name).run())
    try:
        ws, headers = pro_workspace, auth(staff_token(pro_workspace))
        email = f"{unique('e2e')}@example.com"
        invited = await api.post(f"/v1/workspaces/{ws}/invitations", headers=headers,
                                 json={"email": email, "name": "Ryan Wright", "role": "customer"})
        assert invited.status_code == 201, invited.text
        position = invited.json()["position"]
        # The projector may still be joining its group: the bounded wait is 2 s, so ask until it answers.
        for _ in range(30):
            listed = await api.get(f"/v1/workspaces/{ws}/accounts", headers=headers,
                                   params={"min_position": position, "email": email})
            if listed.status_code != 503:
                break
        assert listed.status_code == 200, listed.text
        assert [item["email"] for item in listed.json()["items"]] == [email]
        # The invite's event was applied with its position; /readyz reports the projection's lag.
        assert await pg_pool.fetchval(
            "SELECT position FROM projection_applied WHERE projection = 'status_list' AND aggregate_id = $1",
            uuid.UUID(invited.json()["invitation_id"])) == position
        head, _ = await lag(pg_pool)
        assert head >= position
        ready = await api.get("/readyz")
        assert ready.json()["checks"]["projection_lag"].endswith("events behind the event store")
    finally:
        for task in (relay, projector):
            task.cancel()
        await asyncio.gather(relay, projector, return_exceptions=True)
        access.close()
