"""Idempotency-Key on the real database: a repeat answers what the first request did, once."""

from __future__ import annotations

import asyncio
import json

from services.invite_service.api.idempotency import _CLAIM, fingerprint
from services.invite_service.domain import ids
from tests.helpers import unique
from tests.integration.conftest import auth


def invite_url(ws: str) -> str:
    return f"/v1/workspaces/{ws}/invitations"


def keyed(token: str, key: str) -> dict[str, str]:
    return {**auth(token), "Idempotency-Key": key}


async def test_a_repeated_invite_answers_the_first_answer_and_stores_nothing_twice(api, staff_token, pro_workspace):
    headers = keyed(staff_token(pro_workspace), unique("key"))
    row = {"email": f"{unique('ana')}@example.com", "name": "Ana"}
    first = await api.post(invite_url(pro_workspace), headers=headers, json=row)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    store = api.app.state.portal_access
    version = store.get_account(first.json()["account_id"]).version
    again = await api.post(invite_url(pro_workspace), headers=headers, json=row)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and again.headers["content-type"] == "application/json"
    assert store.get_account(first.json()["account_id"]).version == version
    # Without the key the same body is a second attempt, which the event store refuses.
    plain = await api.post(invite_url(pro_workspace), headers=auth(staff_token(pro_workspace)), json=row)
    assert plain.status_code == 409 and plain.json()["code"] == "duplicate_email"


async def test_an_error_answer_is_replayed_too(api, staff_token, pro_workspace):
    headers = keyed(staff_token(pro_workspace), unique("key"))
    first = await api.post(invite_url(pro_workspace), headers=headers, json={"email": "nope"})
    again = await api.post(invite_url(pro_workspace), headers=headers, json={"email": "nope"})
    assert first.status_code == again.status_code == 422 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


async def test_the_same_key_with_another_body_is_refused(api, staff_token, pro_workspace):
    headers = keyed(staff_token(pro_workspace), unique("key"))
    assert (await api.post(invite_url(pro_workspace), headers=headers, json={"email": f"{unique('a')}@example.com"})).status_code == 201
    other = f"{unique('b')}@example.com"
    reused = await api.post(invite_url(pro_workspace), headers=headers, json={"email": other})
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert api.app.state.portal_access._existing_accounts([ids.account_id(pro_workspace, other)]) == set()
    # ...and with another route.
    bulk = await api.post(f"{invite_url(pro_workspace)}/bulk", headers=headers, json={"invitations": []})
    assert bulk.status_code == 422 and bulk.json()["code"] == "idempotency_key_reused"


async def test_keys_are_per_workspace(api, staff_token, pro_workspace):
    other_ws = unique("ws")
    owner = staff_token(other_ws)
    await api.put(f"/v1/workspaces/{other_ws}", headers=auth(owner), json={"plan": "pro"})
    key, email = unique("key"), f"{unique('a')}@example.com"
    first = await api.post(invite_url(pro_workspace), headers=keyed(staff_token(pro_workspace), key), json={"email": email})
    second = await api.post(invite_url(other_ws), headers=keyed(owner, key), json={"email": email})
    assert first.status_code == second.status_code == 201
    assert first.json()["account_id"] != second.json()["account_id"]


async def test_another_staff_member_of_the_workspace_gets_the_same_answer(api, staff_token, pro_workspace):
    key, row = unique("key"), {"email": f"{unique('a')}@example.com"}
    first = await api.post(invite_url(pro_workspace), headers=keyed(staff_token(pro_workspace, sub="s1"), key), json=row)
    again = await api.post(
        invite_url(pro_workspace), headers=keyed(staff_token(pro_workspace, role="dispatcher", sub="s2"), key), json=row
    )
    assert again.status_code == 201 and again.json() == first.json()


async def test_a_read_only_role_cannot_claim_a_key(api, staff_token, pro_workspace):
    key, row = unique("key"), {"email": f"{unique('a')}@example.com"}
    refused = await api.post(invite_url(pro_workspace), headers=keyed(staff_token(pro_workspace, role="viewer"), key), json=row)
    assert refused.status_code == 403
    allowed = await api.post(invite_url(pro_workspace), headers=keyed(staff_token(pro_workspace), key), json=row)
    assert allowed.status_code == 201 and "idempotent-replayed" not in allowed.headers


async def test_concurrent_requests_with_one_key_run_once(api, staff_token, pro_workspace):
    headers = keyed(staff_token(pro_workspace), unique("key"))
    rows = [{"email": f"{unique('c')}@example.com"} for _ in range(300)]
    url = f"{invite_url(pro_workspace)}/bulk"
    answers = await asyncio.gather(*(api.post(url, headers=headers, json={"invitations": rows}) for _ in range(4)))
    ran = [a for a in answers if a.status_code == 200 and "idempotent-replayed" not in a.headers]
    assert len(ran) == 1 and ran[0].json()["created"] == 300
    for answer in answers:
        if answer is ran[0]:
            continue
        if answer.status_code == 409:
            assert answer.json()["code"] == "request_in_progress" and answer.headers["retry-after"] == "1"
        else:
            assert answer.headers["idempotent-replayed"] == "true" and answer.json() == ran[0].json()
    replay = await api.post(url, headers=headers, json={"invitations": rows})
    assert replay.json() == ran[0].json()


async def test_an_in_progress_key_answers_409(api, staff_token, pro_workspace, pg_pool):
    key, row = unique("key"), {"email": f"{unique('a')}@example.com"}
    body = json.dumps(row).encode()
    # A request with this key is running elsewhere (claimed, no answer yet).
    print_ = fingerprint("POST", invite_url(pro_workspace), "application/json", body)
    assert await pg_pool.fetchval(_CLAIM, pro_workspace, key, print_)
    response = await api.post(
        invite_url(pro_workspace), headers={**keyed(staff_token(pro_workspace), key), "Content-Type": "application/json"},
        content=body,
    )
    assert response.status_code == 409 and response.json()["code"] == "request_in_progress"
    assert api.app.state.portal_access._existing_accounts([ids.account_id(pro_workspace, row["email"])]) == set()


async def test_a_key_older_than_a_day_is_expired_and_runs_again(api, staff_token, pro_workspace, pg_pool):
    headers = keyed(staff_token(pro_workspace), key := unique("key"))
    first = await api.post(invite_url(pro_workspace), headers=headers, json={"email": "x"})
    assert first.status_code == 422
    await pg_pool.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE workspace = $1 AND key = $2",
        pro_workspace, key,
    )
    email = f"{unique('a')}@example.com"
    fresh = await api.post(invite_url(pro_workspace), headers=headers, json={"email": email})
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers


async def test_a_malformed_key_is_refused(api, staff_token, pro_workspace):
    response = await api.post(
        invite_url(pro_workspace), headers=keyed(staff_token(pro_workspace), "x" * 256), json={"email": "a@example.com"}
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_idempotency_key"



async def test_a_server_error_frees_the_key_so_the_retry_runs(api, staff_token, pro_workspace, monkeypatch):
    headers = keyed(staff_token(pro_workspace), unique("key"))
    row = {"email": f"{unique('a')}@example.com"}
    store = api.app.state.portal_access

    async def broken(*args, **kwargs):
        raise RuntimeError("the event store went away")

    monkeypatch.setattr(store, "invite", broken)
    failed = await api.post(invite_url(pro_workspace), headers=headers, json=row)
    assert failed.status_code == 500
    monkeypatch.undo()
    retried = await api.post(invite_url(pro_workspace), headers=headers, json=row)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers


async def test_a_repeated_action_resends_once(api, staff_token, pro_workspace):
    token = staff_token(pro_workspace)
    created = await api.post(invite_url(pro_workspace), headers=auth(token), json={"email": f"{unique('kai')}@example.com"})
    account_id = created.json()["account_id"]
    url = f"/v1/workspaces/{pro_workspace}/accounts/{account_id}/resend"
    headers = keyed(token, unique("key"))
    first = await api.post(url, headers=headers)
    store = api.app.state.portal_access
    version = store.get_account(account_id).version
    again = await api.post(url, headers=headers)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert store.get_account(account_id).version == version  # one resend, not two
