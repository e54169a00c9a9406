"""Bulk invites (JSON and CSV) on the real event store: one result per row, nothing twice."""

from __future__ import annotations

import json

import pytest

from services.invite_service.api.schemas import BulkInvitationsOut
from services.invite_service.domain import ids
from tests.helpers import unique
from tests.integration.conftest import auth

CSV = {"Content-Type": "text/csv"}


def bulk_url(ws: str) -> str:
    return f"/v1/workspaces/{ws}/invitations/bulk"


async def single_invite_error(api, ws, token, row) -> dict:
    response = await api.post(f"/v1/workspaces/{ws}/invitations", headers=auth(token), json=row)
    assert response.status_code in (409, 422), response.text
    return {"code": response.json()["code"], "message": response.json()["detail"]}


async def test_mixed_rows_answer_one_result_each_in_order(api, staff_token, pro_workspace):
    token = staff_token(pro_workspace, role="dispatcher")
    existing = f"{unique('old')}@example.com"
    assert (await api.post(f"/v1/workspaces/{pro_workspace}/invitations", headers=auth(token), json={"email": existing})).status_code == 201
    fresh = f"{unique('new')}@example.com"
    rows = [
        {"email": fresh, "name": "Ana", "role": "charter_client", "resources": [{"type": "trip", "id": "T1"}]},
        {"email": "not-an-email"},
        {"email": existing.upper()},  # exists already, spelt differently
        {"name": "No Email"},
        {"email": fresh.upper()},  # repeats the first row
        {"email": f"{unique('r')}@example.com", "role": "skipper"},
        {"email": f"{unique('p')}@example.com", "phone": "12"},
        {"email": f"{unique('u')}@example.com", "colour": "red"},
        "not an object",
    ]
    response = await api.post(bulk_url(pro_workspace), headers=auth(token), json={"invitations": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    # Built as plain JSON by the route: exactly the documented model's shape, every field present.
    assert BulkInvitationsOut.model_validate(body).model_dump(mode="json") == body
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["created", "invalid", "duplicate", "invalid", "duplicate", "invalid", "invalid", "invalid", "invalid"]
    assert (body["created"], body["duplicate"], body["invalid"]) == (1, 2, 6)
    results = body["results"]
    assert results[0]["account_id"] == str(ids.account_id(pro_workspace, fresh)) and results[0]["error"] is None
    assert results[2]["account_id"] == str(ids.account_id(pro_workspace, existing))
    assert results[2]["error"]["code"] == results[4]["error"]["code"] == "duplicate_email"
    assert results[4]["account_id"] == results[0]["account_id"]
    assert [r["email"] for r in results[:3]] == [fresh, "not-an-email", existing.upper()] and results[3]["email"] is None
    # Each invalid row answers what the same invite sent alone answers.
    for index in (1, 3, 5, 6, 7):
        assert results[index]["error"] == await single_invite_error(api, pro_workspace, token, rows[index]), index
    assert results[5]["error"]["code"] == "unknown_role" and results[8]["error"]["code"] == "validation_error"
    account = api.app.state.portal_access.get_account(results[0]["account_id"])
    assert account.role == "charter_client" and account.resources == [{"type": "trip", "id": "T1"}]
    assert body["position"] >= 1


async def test_resent_bulk_creates_nothing_twice(api, staff_token, pro_workspace):
    rows = [{"email": f"{unique('c')}@example.com"} for _ in range(30)]
    url, headers = bulk_url(pro_workspace), auth(staff_token(pro_workspace))
    first = await api.post(url, headers=headers, json={"invitations": rows})
    assert [r["status"] for r in first.json()["results"]] == ["created"] * 30
    store = api.app.state.portal_access
    versions = [store.get_account(r["account_id"]).version for r in first.json()["results"]]
    again = await api.post(url, headers=headers, json={"invitations": rows})
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 30
    assert [r["account_id"] for r in again.json()["results"]] == [r["account_id"] for r in first.json()["results"]]
    assert again.json()["position"] is None
    assert [store.get_account(r["account_id"]).version for r in first.json()["results"]] == versions


async def test_csv_rows_with_lists_and_empty_cells(api, staff_token, pro_workspace):
    ana, bo = f"{unique('ana')}@example.com", f"{unique('bo')}@example.com"
    csv_body = (
        "\ufeffemail,name,role,phone,resources,channels\r\n"
        f"{ana},Ana Lima,charter_client,+14155550123,trip:T1;project:P2,email;sms\r\n"
        "\r\n"
        f'{bo},"Bo, Jr.",,,,\r\n'
        "bad-address,Nobody,,,,\r\n"
        f"{unique('x')}@example.com,Too,Many,,,,extra\r\n"
    )
    response = await api.post(bulk_url(pro_workspace), headers={**auth(staff_token(pro_workspace)), **CSV}, content=csv_body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "created", "invalid", "invalid"]
    assert results[2]["error"]["code"] == "invalid_email" and results[3]["error"]["code"] == "malformed_row"
    store = api.app.state.portal_access
    account = store.get_account(results[0]["account_id"])
    assert account.resources == [{"type": "trip", "id": "T1"}, {"type": "project", "id": "P2"}]
    assert account.phone == "+14155550123" and account.role == "charter_client"
    assert store.repository.get(account.invitation_id).channels == ["email", "sms"]
    second = store.get_account(results[1]["account_id"])
    assert second.name == "Bo, Jr." and second.role == "customer"


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"", 400, "malformed_csv"),
        (b"\xff\xfeemail\n", 400, "malformed_csv"),
        (b'email,name\n"unterminated,Ana\n', 400, "malformed_csv"),
        (b"email,emial\na@example.com,x\n", 422, "unknown_column"),
        (b"email,email\na@example.com,b@example.com\n", 400, "malformed_csv"),
    ],
)
async def test_malformed_csv_is_refused_whole(api, staff_token, pro_workspace, content, status, code):
    headers = {**auth(staff_token(pro_workspace)), **CSV}
    response = await api.post(bulk_url(pro_workspace), headers=headers, content=content)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"[]", 422, "validation_error"),
        (b'{"invitations": {}}', 422, "validation_error"),
        (b'{"invitations": [], "extra": 1}', 422, "validation_error"),
    ],
)
async def test_malformed_json_is_refused_whole(api, staff_token, pro_workspace, content, status, code):
    headers = {**auth(staff_token(pro_workspace)), "Content-Type": "application/json"}
    response = await api.post(bulk_url(pro_workspace), headers=headers, content=content)
    assert response.status_code == status and response.json()["code"] == code


async def test_more_than_ten_thousand_rows_is_refused(api, staff_token, pro_workspace):
    rows = [{"email": f"a{i}@example.com"} for i in range(10_001)]
    response = await api.post(bulk_url(pro_workspace), headers=auth(staff_token(pro_workspace)), json={"invitations": rows})
    assert response.status_code == 422 and response.json()["code"] == "too_many_rows"
    assert api.app.state.portal_access._existing_accounts([ids.account_id(pro_workspace, "a0@example.com")]) == set()


async def test_bulk_body_limit_is_its_own_and_other_types_are_refused(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    settings = api.app.state.settings
    # Larger than any other route takes, smaller than the bulk limit: parsed (and refused for its shape).
    padded = json.dumps({"invitations": [], "pad": "x" * (settings.max_body_bytes + 10)}).encode()
    response = await api.post(bulk_url(pro_workspace), headers={**headers, "Content-Type": "application/json"}, content=padded)
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    huge = b"x" * (settings.max_bulk_body_bytes + 1)
    response = await api.post(bulk_url(pro_workspace), headers={**headers, "Content-Type": "application/json"}, content=huge)
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    response = await api.post(bulk_url(pro_workspace), headers={**headers, "Content-Type": "text/plain"}, content=b"email\n")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    # CSV stays refused everywhere else.
    single = f"/v1/workspaces/{pro_workspace}/invitations"
    response = await api.post(single, headers={**headers, **CSV}, content=b"email\na@example.com\n")
    assert response.status_code == 415


@pytest.mark.parametrize("role", ["agent", "viewer"])
async def test_read_only_roles_may_not_bulk_invite(api, staff_token, pro_workspace, role):
    email = f"{unique('ro')}@example.com"
    response = await api.post(
        bulk_url(pro_workspace), headers=auth(staff_token(pro_workspace, role=role)), json={"invitations": [{"email": email}]}
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden_role"
    assert api.app.state.portal_access._existing_accounts([ids.account_id(pro_workspace, email)]) == set()


async def test_workspace_gates_refuse_the_whole_bulk(api, staff_token):
    ws = unique("ws")
    headers = auth(staff_token(ws))
    assert (await api.put(f"/v1/workspaces/{ws}", headers=headers, json={"plan": "free"})).status_code == 201
    response = await api.post(bulk_url(ws), headers=headers, json={"invitations": [{"email": "bad"}]})
    assert response.status_code == 403 and response.json()["code"] == "plan_required"


async def test_ten_thousand_rows_are_answered(api, staff_token, pro_workspace):
    prefix = unique("k")
    rows = [{"email": f"{prefix}-{i}@example.com", "name": f"Client {i}"} for i in range(10_000)]
    rows[1234]["email"] = "broken"
    response = await api.post(bulk_url(pro_workspace), headers=auth(staff_token(pro_workspace)), json={"invitations": rows})
    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == 10_000 and (body["created"], body["invalid"]) == (9_999, 1)
    assert body["results"][1234]["status"] == "invalid"
    assert body["results"][9_999]["email"] == f"{prefix}-9999@example.com"
    created = [ids.account_id(pro_workspace, r["email"]) for r in rows if r["email"] != "broken"]
    assert len(api.app.state.portal_access._existing_accounts(created)) == 9_999


async def test_an_account_created_after_the_look_up_makes_only_its_row_a_duplicate(api, staff_token, pro_workspace, monkeypatch):
    """A single invite of the same email lands between the bulk's look-up and its commit: the
    chunk's transaction fails on that row, and the others are saved without it."""
    headers = auth(staff_token(pro_workspace))
    racer = f"{unique('racer')}@example.com"
    assert (await api.post(f"/v1/workspaces/{pro_workspace}/invitations", headers=headers, json={"email": racer})).status_code == 201
    store = api.app.state.portal_access
    monkeypatch.setattr(store, "_existing_accounts", lambda account_ids: set())  # the look-up ran before the racer
    rows = [{"email": f"{unique('c')}@example.com"} for _ in range(5)]
    rows.insert(2, {"email": racer})
    response = await api.post(bulk_url(pro_workspace), headers=headers, json={"invitations": rows})
    assert [r["status"] for r in response.json()["results"]] == ["created", "created", "duplicate", "created", "created", "created"]
    assert response.json()["results"][2]["error"]["code"] == "duplicate_email"
    monkeypatch.undo()
    created = [ids.account_id(pro_workspace, r["email"]) for r in rows if r["email"] != racer]
    assert len(store._existing_accounts(created)) == 5
