"""The status list over a few thousand accounts: every filter, every sort in both directions,
pages that neither repeat nor skip rows while accounts are added, counts, `link_expired`,
and the active accounts as CSV."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from projections.query_api import router
from services.common.problems import Problem, handle_problem
from services.common.staff_auth import make_staff_token
from tests.conftest import STAFF_JWT_SECRET
from tests.helpers import unique
from tests.integration.seeding import Seeded, insert_rows, make_rows

COUNT = 3000
NEVER = datetime.min  # how the list orders "never signed in"


@pytest.fixture
async def client(pg_pool):
    app = FastAPI()
    app.include_router(router)
    app.add_exception_handler(Problem, handle_problem)
    app.state.read_pool = pg_pool
    app.state.staff_jwt_secret = STAFF_JWT_SECRET
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
        yield client


@pytest.fixture
async def seeded(pg_pool) -> tuple[str, Seeded]:
    ws = unique()
    seeded = make_rows(ws, COUNT)
    await insert_rows(pg_pool, seeded.rows)
    return ws, seeded


def _auth(ws: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_staff_token(STAFF_JWT_SECRET, sub='staff-1', ws=ws, role='viewer')}"}


async def _page(client, ws, **params) -> dict:
    response = await client.get(f"/v1/workspaces/{ws}/accounts", params=params, headers=_auth(ws))
    assert response.status_code == 200, response.text
    return response.json()


async def _all_ids(client, ws, **params) -> list[uuid.UUID]:
    ids, cursor = [], None
    while True:
        body = await _page(client, ws, limit=200, **params, **({"cursor": cursor} if cursor else {}))
        ids += [uuid.UUID(item["account_id"]) for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def _expected(rows, key, reverse: bool) -> list[uuid.UUID]:
    return [r["account_id"] for r in sorted(rows, key=lambda r: (key(r), r["account_id"]), reverse=reverse)]


def _name_key(row) -> str:
    return (row["name"] or row["email"] or "").lower()


def _lapsed(row, now) -> bool:
    return row["status"] == "pending" and row["expires_at"] is not None and row["expires_at"] < now


SORTS = {
    "invited_at": lambda r: r["invited_at"],
    "name": _name_key,
    "last_sign_in_at": lambda r: (r["last_sign_in_at"].replace(tzinfo=None) if r["last_sign_in_at"] else NEVER),
}


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", list(SORTS))
async def test_every_sort_pages_through_every_account_once_in_order(client, seeded, sort, order):
    ws, data = seeded
    ids = await _all_ids(client, ws, sort=sort, order=order)
    assert len(ids) == COUNT
    assert ids == _expected(data.rows, SORTS[sort], reverse=order == "desc")


async def test_pages_neither_repeat_nor_skip_while_accounts_are_added(client, seeded, pg_pool):
    ws, data = seeded
    seen: list[uuid.UUID] = []
    body = await _page(client, ws, limit=100)
    seen += [uuid.UUID(i["account_id"]) for i in body["items"]]
    # Accounts invited after the first page (ahead of the cursor) and long before (behind it)
    # arrive while someone pages.
    newer = make_rows(ws, 30, seed=99, now=data.now + timedelta(days=1)).rows
    older = make_rows(ws, 30, seed=98, now=data.now - timedelta(days=400)).rows
    for row in newer + older:
        row["email"] = f"late-{row['account_id']}@example.com"
    await insert_rows(pg_pool, newer)
    cursor = body["next_cursor"]
    inserted_older = False
    while cursor:
        body = await _page(client, ws, limit=100, cursor=cursor)
        seen += [uuid.UUID(i["account_id"]) for i in body["items"]]
        cursor = body["next_cursor"]
        if not inserted_older:
            await insert_rows(pg_pool, older)
            inserted_older = True
    assert len(seen) == len(set(seen)), "a page repeated a row"
    original = {r["account_id"] for r in data.rows}
    assert original <= set(seen), "a page skipped a row"
    assert not {r["account_id"] for r in newer} & set(seen), "rows ahead of the cursor appeared later"
    assert {r["account_id"] for r in older} <= set(seen), "rows behind the cursor are reached in their turn"


async def test_filters_match_what_they_name(client, seeded):
    ws, data = seeded
    rows = data.rows

    async def ids(**params) -> set[uuid.UUID]:
        return set(await _all_ids(client, ws, **params))

    assert await ids(status="active") == {r["account_id"] for r in rows if r["status"] == "active"}
    assert await ids(link_expired="true") == {r["account_id"] for r in rows if _lapsed(r, data.now)}
    assert await ids(status="pending", link_expired="false") == {
        r["account_id"] for r in rows if r["status"] == "pending" and not _lapsed(r, data.now)
    }
    assert await ids(email="USER00042@example.com") == {rows[42]["account_id"]}
    # Free text: part of the name, the email or the company, case-insensitive.
    assert await ids(q="acme") == {r["account_id"] for r in rows if "acme" in (r["company"] or "").lower()}
    assert await ids(q="person0012") == {r["account_id"] for r in rows if "person0012" in (r["name"] or "").lower()}
    assert await ids(q="user0123") == {r["account_id"] for r in rows if r["email"].startswith("user0123")}
    assert await ids(q="%") == set()  # a literal, not a wildcard
    # A term with digits is looked up by its digits, then checked whole: the same rows as any other term.
    assert await ids(q="xperson0012") == set()
    assert await ids(q="0012") == {r["account_id"] for r in rows if "0012" in f"{r['name']}\x1f{r['email']}"}
    assert await ids(q="on0012_") == set()  # `_` is a literal too, also in the whole term's check
    assert await ids(resource_type="trip", resource_id="T-7") == {
        r["account_id"] for r in rows if json.loads(r["resources"])[0]["id"] == "T-7"
    }
    combined = await ids(status="active", q="blue jets", sort="name", order="asc")
    assert combined == {r["account_id"] for r in rows if r["status"] == "active" and r["company"] == "Blue Jets"}


async def test_link_expired_is_shown_on_each_row(client, seeded):
    ws, data = seeded
    by_id = data.by_id()
    for item in (await _page(client, ws, limit=200, status="pending"))["items"]:
        assert item["link_expired"] == _lapsed(by_id[uuid.UUID(item["account_id"])], data.now)
        assert item["actions"] == ["resend", "revoke"]


async def test_a_cursor_of_another_sort_is_refused(client, seeded):
    ws, _ = seeded
    cursor = (await _page(client, ws, limit=5, sort="name"))["next_cursor"]
    response = await client.get(
        f"/v1/workspaces/{ws}/accounts", params={"cursor": cursor, "sort": "invited_at"}, headers=_auth(ws)
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


async def test_summary_counts_each_state(client, seeded):
    ws, data = seeded
    response = await client.get(f"/v1/workspaces/{ws}/accounts/summary", headers=_auth(ws))
    assert response.status_code == 200, response.text
    expected = {s: sum(r["status"] == s for r in data.rows) for s in ("not_invited", "pending", "active", "disabled")}
    assert response.json() == {
        **expected, "link_expired": sum(_lapsed(r, data.now) for r in data.rows), "total": COUNT,
    }


async def test_summary_of_an_empty_workspace_is_zeros_and_not_an_account_lookup(client):
    ws = unique()
    response = await client.get(f"/v1/workspaces/{ws}/accounts/summary", headers=_auth(ws))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "not_invited": 0, "pending": 0, "active": 0, "disabled": 0, "link_expired": 0, "total": 0,
    }


async def test_active_accounts_export_as_csv(client, seeded, pg_pool):
    ws, data = seeded
    # A name that a spreadsheet would run as a formula is written as text.
    formula = data.rows[1]
    assert formula["status"] == "active"
    await pg_pool.execute("UPDATE account_status SET name = '=HYPERLINK(1)' WHERE account_id = $1",
                          formula["account_id"])
    response = await client.get(f"/v1/workspaces/{ws}/accounts/active.csv", headers=_auth(ws))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(response.text)))
    active = [r for r in data.rows if r["status"] == "active"]
    assert {uuid.UUID(r["account_id"]) for r in table} == {r["account_id"] for r in active}
    by_id = {r["account_id"]: r for r in table}
    assert by_id[str(formula["account_id"])]["name"] == "'=HYPERLINK(1)"
    sample = active[3]
    assert by_id[str(sample["account_id"])]["resources"] == json.loads(sample["resources"])[0]["type"] + ":" + \
        json.loads(sample["resources"])[0]["id"]
    assert by_id[str(sample["account_id"])]["email"] == sample["email"]


async def test_another_workspaces_token_gets_no_summary_or_export(client, seeded):
    ws, _ = seeded
    for path in ("summary", "active.csv"):
        response = await client.get(f"/v1/workspaces/{ws}/accounts/{path}", headers=_auth(unique()))
        assert response.status_code == 404, path
