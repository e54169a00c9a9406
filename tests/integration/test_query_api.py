"""The staff read API over real projections: filters, pagination, auth and not-found."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from projections import deliveries
from projections.projector import Projector
from projections.query_api import router
from services.common.problems import Problem, handle_problem
from services.common.staff_auth import make_staff_token
from tests.conftest import STAFF_JWT_SECRET
from tests.helpers import unique
from tests.integration.envelopes import AccountStory, project


@pytest.fixture
async def client(pg_pool):
    app = FastAPI()
    app.include_router(router)
    app.add_exception_handler(Problem, handle_problem)
    app.state.read_pool = pg_pool
    app.state.staff_jwt_secret = STAFF_JWT_SECRET
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
        yield client


def _auth(ws: str, role: str = "viewer") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_staff_token(STAFF_JWT_SECRET, sub='staff-1', ws=ws, role=role)}"}


async def _seed(pool, story: AccountStory, *, active: bool = False) -> AccountStory:
    events = [story.created(), story.invite_sent()] + ([story.activated()] if active else [])
    await project(pool, *events)
    return story


@pytest.fixture
async def workspace(pg_pool):
    """Three pending and two active accounts, invited a minute apart."""
    ws = unique()
    base = AccountStory(ws, "x@example.com").at
    people = [
        ("ann@example.com", "Ann Archer", "Blue Jets", False),
        ("bob@example.com", "Bob Baker", "Acme Charters", True),
        ("cy@example.com", "Cy Cole", None, False),
        ("di@example.com", "Di Dunn", "acme freight", True),
        ("ed@example.com", "Ed Eames", "Solo", False),
    ]
    stories = {}
    for i, (email, name, company, active) in enumerate(people):
        story = AccountStory(ws, email, name=name, company=company, at=base + timedelta(minutes=i))
        stories[email] = await _seed(pg_pool, story, active=active)
    return ws, stories


async def _emails(client, ws, **params) -> list[str]:
    response = await client.get(f"/v1/workspaces/{ws}/accounts", params=params, headers=_auth(ws))
    assert response.status_code == 200, response.text
    return [item["email"] for item in response.json()["items"]]


async def test_list_is_newest_first_with_actions(client, workspace):
    ws, _ = workspace
    response = await client.get(f"/v1/workspaces/{ws}/accounts", headers=_auth(ws))
    assert response.status_code == 200
    body = response.json()
    assert [i["email"] for i in body["items"]] == [
        "ed@example.com", "di@example.com", "cy@example.com", "bob@example.com", "ann@example.com"
    ]
    assert body["next_cursor"] is None
    by_email = {i["email"]: i for i in body["items"]}
    assert by_email["ann@example.com"]["status"] == "pending"
    assert by_email["ann@example.com"]["actions"] == ["resend", "revoke"]
    assert by_email["ann@example.com"]["expires_at"] is not None
    assert by_email["bob@example.com"]["actions"] == ["disable", "password-reset"]
    assert by_email["bob@example.com"]["activated_at"] is not None
    assert "nonce" not in response.text


async def test_filters(client, workspace):
    ws, _ = workspace
    assert await _emails(client, ws, status="active") == ["di@example.com", "bob@example.com"]
    assert await _emails(client, ws, email="CY@example.com") == ["cy@example.com"]
    assert await _emails(client, ws, q="acme") == ["di@example.com", "bob@example.com"]
    assert await _emails(client, ws, q="ann") == ["ann@example.com"]
    assert await _emails(client, ws, q="%") == []
    assert len(await _emails(client, ws, resource_type="trip", resource_id="trip-1")) == 5
    assert await _emails(client, ws, resource_type="trip", resource_id="trip-2") == []


async def test_cursor_pages_cover_every_account_once(client, workspace):
    ws, stories = workspace
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await client.get(f"/v1/workspaces/{ws}/accounts", params=params, headers=_auth(ws))).json()
        seen += [i["email"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(stories) and len(seen) == len(set(seen))


async def test_bad_query_parameters_are_422_problems(client, workspace):
    ws, _ = workspace
    url = f"/v1/workspaces/{ws}/accounts"
    for params in ({"cursor": "not-a-cursor"}, {"resource_type": "trip"}):
        response = await client.get(url, params=params, headers=_auth(ws))
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(url, params={"limit": 0}, headers=_auth(ws))).status_code == 422
    assert (await client.get(url, params={"status": "sleeping"}, headers=_auth(ws))).status_code == 422


async def test_one_account_with_deliveries(client, pg_pool, workspace):
    ws, stories = workspace
    story = stories["ann@example.com"]
    await deliveries.on_delivery(story.delivery("failed", attempt=1), Projector(pg_pool))
    response = await client.get(f"/v1/workspaces/{ws}/accounts/{story.account_id}", headers=_auth(ws, "agent"))
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "ann@example.com" and body["status"] == "pending"
    assert body["sign_ins"] == 0 and body["recent_sign_ins"] == []
    assert [(d["channel"], d["status"], d["attempt"]) for d in body["deliveries"]] == [("email", "failed", 1)]
    assert body["last_delivery_status"] == "failed"
    assert body["resources"] == [{"type": "trip", "id": "trip-1"}]


async def test_auth_and_not_found(client, workspace):
    ws, stories = workspace
    account = stories["bob@example.com"].account_id
    list_url, one_url = f"/v1/workspaces/{ws}/accounts", f"/v1/workspaces/{ws}/accounts/{account}"

    assert (await client.get(list_url)).status_code == 401
    assert (await client.get(list_url, headers={"Authorization": "Bearer nonsense"})).status_code == 401
    # Another workspace's token: as if this workspace did not exist.
    assert (await client.get(list_url, headers=_auth(unique()))).status_code == 404
    assert (await client.get(one_url, headers=_auth(unique()))).status_code == 404

    missing = await client.get(f"{list_url}/{uuid.uuid4()}", headers=_auth(ws))
    assert missing.status_code == 404 and missing.json()["code"] == "account_not_found"
    # Another workspace's account through this workspace's URL: the same 404.
    other_ws = unique()
    elsewhere = f"/v1/workspaces/{other_ws}/accounts/{account}"
    response = await client.get(elsewhere, headers=_auth(other_ws))
    assert response.status_code == 404 and response.json()["code"] == "account_not_found"
