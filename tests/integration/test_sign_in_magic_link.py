"""Magic-link sign-in: a 202 that says nothing about the address, a link that a GET only
shows, that works once, expires, and is voided by the next one; then the hand-off."""

from __future__ import annotations

from datetime import timedelta

from services.invite_service.commands import sign_in
from tests.integration.conftest import auth
from tests.integration.sign_in_helpers import (
    JSON, account, active_client, cookie, csrf_token, event_types, magic_path, unknown_email, workspace,
)


async def test_a_request_answers_the_same_for_any_address_and_records_a_link_only_for_an_account(api, staff_token):
    ws = await workspace(api, staff_token, "magic_link")
    email, account_id, _ = await active_client(api, staff_token, ws)
    known = await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    unknown = await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": unknown_email()})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert event_types(api, account_id)[-1] == "MagicLinkRequested"


async def test_get_only_shows_the_post_signs_in_and_the_link_then_is_spent(api, staff_token):
    ws = await workspace(api, staff_token, "magic_link")
    email, account_id, _ = await active_client(api, staff_token, ws)
    assert (await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})).status_code == 202
    path = magic_path(api, ws, account_id)
    for _ in range(3):  # a mail scanner prefetches
        page = await api.get(path)
        assert page.status_code == 200 and "Sign in to Pride Travelers" in page.text and "#0B7A75" in page.text
    assert "SignedIn" not in event_types(api, account_id)[-1:]
    signed = await api.post(path, data={"csrf_token": csrf_token(page.text)},
                            headers={"User-Agent": "Playwright-ish/1.0"})
    assert signed.status_code == 303 and signed.headers["location"] == f"/portal/{ws}/"
    session = await api.get(f"/portal/{ws}/session", headers=cookie(signed.cookies["porchlight_session"]))
    assert session.status_code == 200 and session.json()["email"] == email
    last = account(api, account_id).sign_ins[0]
    assert last["method"] == "magic_link" and last["user_agent"] == "Playwright-ish/1.0" and last["ip"]
    again = await api.post(path, headers=JSON, json={})
    assert again.status_code == 410 and again.json()["code"] == "link_invalid"
    page = await api.get(path)
    assert page.status_code == 410 and "That link is no longer valid." in page.text
    assert 'action="/portal/' + ws + '/sign-in"' in page.text  # the 410 page offers the sign-in form


async def test_a_new_link_voids_the_previous_one(api, staff_token):
    ws = await workspace(api, staff_token, "magic_link")
    email, account_id, _ = await active_client(api, staff_token, ws)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    first = magic_path(api, ws, account_id)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    second = magic_path(api, ws, account_id)
    assert first != second
    assert (await api.post(first, headers=JSON, json={})).status_code == 410
    assert (await api.post(second, headers=JSON, json={})).status_code == 200


async def test_a_link_expires_after_the_workspace_lifetime(api, staff_token, monkeypatch):
    ws = await workspace(api, staff_token, "magic_link", magic_link_ttl_minutes=5)
    email, account_id, _ = await active_client(api, staff_token, ws)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    acc = account(api, account_id)
    assert timedelta(minutes=4) < acc.magic_expires_at - sign_in._now() <= timedelta(minutes=5)
    path = magic_path(api, ws, account_id)
    later = sign_in._now() + timedelta(minutes=5, seconds=1)
    monkeypatch.setattr(sign_in, "_now", lambda: later)
    assert (await api.get(path)).status_code == 410
    assert (await api.post(path, headers=JSON, json={})).status_code == 410


async def test_pending_and_disabled_accounts_get_no_link(api, staff_token):
    ws = await workspace(api, staff_token, "magic_link")
    email, account_id, _ = await active_client(api, staff_token, ws)
    await api.post(f"/v1/workspaces/{ws}/accounts/{account_id}/disable", headers=auth(staff_token(ws)), json={})
    before = event_types(api, account_id)
    answer = await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    assert answer.status_code == 202 and event_types(api, account_id) == before


async def test_the_form_flow_shows_check_your_email(api, staff_token):
    ws = await workspace(api, staff_token, "magic_link")
    page = await api.get(f"/portal/{ws}/sign-in")
    assert page.status_code == 200 and "Email me a sign-in link" in page.text
    sent = await api.post(f"/portal/{ws}/sign-in", data={"email": unknown_email(), "csrf_token": csrf_token(page.text)})
    assert sent.status_code == 202 and "Check your email" in sent.text
    assert (await api.post(f"/portal/{ws}/sign-in", data={"email": unknown_email()})).status_code == 403
