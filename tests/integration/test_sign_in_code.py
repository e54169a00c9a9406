"""One-time codes: the invite link signs in the first time; later a 6-digit code, only the
latest working; five wrong ones kill the code and lock sign-in for 15 minutes."""

from __future__ import annotations

from datetime import timedelta

from services.invite_service.commands import sign_in
from tests.integration.sign_in_helpers import (
    JSON, account, active_client, claim_path, code_of, cookie, csrf_token, event_types, invite, unknown_email, workspace,
)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_the_invite_link_signs_in_the_first_time(api, staff_token):
    ws = await workspace(api, staff_token, "code")
    email, account_id, session = await active_client(api, staff_token, ws)
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(session))).status_code == 200
    assert account(api, account_id).sign_ins[0]["method"] == "claim"
    assert event_types(api, account_id)[-1] == "SignedIn"


async def test_a_code_signs_in_once_and_only_the_latest_works(api, staff_token):
    ws = await workspace(api, staff_token, "code")
    email, account_id = await invite(api, staff_token, ws, phone="+14155550123")
    assert (await api.post(claim_path(api, account_id), headers=JSON, json={})).status_code == 200
    assert (await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})).status_code == 202
    first = code_of(api, account_id)
    issued = api.app.state.portal_access.events.get(account(api, account_id).id)
    last = list(issued)[-1]
    assert type(last).__name__ == "SignInCodeIssued" and last.channels == ["email", "sms"]
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    latest = code_of(api, account_id)
    if first != latest:
        stale = await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": first})
        assert stale.status_code == 401 and stale.json()["code"] == "wrong_code"
    ok = await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": latest})
    assert ok.status_code == 200, ok.text
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(ok.cookies["porchlight_session"]))).status_code == 200
    assert account(api, account_id).sign_ins[0]["method"] == "code"
    reused = await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": latest})
    assert reused.status_code == 401


async def test_five_wrong_codes_lock_out_for_fifteen_minutes_then_it_ends(api, staff_token, monkeypatch):
    # The per-email request limit (5 per 15 minutes) is not what this test is about.
    monkeypatch.setattr(api.app.state.settings, "sign_in_per_email", 100)
    ws = await workspace(api, staff_token, "code")
    email, account_id, _ = await active_client(api, staff_token, ws)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    code = code_of(api, account_id)
    answers = [await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": _wrong(code)})
               for _ in range(5)]
    # The fifth answers like any wrong code (an address without an account can never lock:
    # a 429 there would say that this one has an account); from then on, 429.
    assert [a.status_code for a in answers] == [401] * 5
    types = event_types(api, account_id)
    assert types.count("VerificationFailed") == 5 and types[-1] == "VerificationLockedOut"
    # The code died with the lockout: even the right one is refused, and locked answers 429.
    locked = await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": code})
    assert locked.status_code == 429 and locked.json()["code"] == "too_many_attempts"
    assert 800 < int(locked.headers["retry-after"]) <= 901
    # A new code is not even issued while locked.
    before = event_types(api, account_id)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    assert event_types(api, account_id) == before
    # Sixteen minutes on, the lockout is over: a new code works.
    later = sign_in._now() + timedelta(minutes=16)
    monkeypatch.setattr(sign_in, "_now", lambda: later)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    fresh = code_of(api, account_id)
    ok = await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": fresh})
    assert ok.status_code == 200, ok.text


async def test_an_unknown_address_gets_the_same_401_as_a_wrong_code(api, staff_token):
    ws = await workspace(api, staff_token, "code")
    email, account_id, _ = await active_client(api, staff_token, ws)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    wrong = await api.post(f"/portal/{ws}/sign-in/code", headers=JSON,
                           json={"email": email, "code": _wrong(code_of(api, account_id))})
    nobody = await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": unknown_email(), "code": "123456"})
    assert wrong.status_code == nobody.status_code == 401 and wrong.json() == nobody.json()


async def test_the_code_form_flow(api, staff_token):
    ws = await workspace(api, staff_token, "code")
    email, account_id, _ = await active_client(api, staff_token, ws)
    page = await api.get(f"/portal/{ws}/sign-in")
    assert "Email me a code" in page.text
    sent = await api.post(f"/portal/{ws}/sign-in", data={"email": email, "csrf_token": csrf_token(page.text)})
    assert sent.status_code == 202 and 'autocomplete="one-time-code"' in sent.text
    wrong = await api.post(f"/portal/{ws}/sign-in/code", data={
        "email": email, "code": _wrong(code_of(api, account_id)), "csrf_token": csrf_token(sent.text)})
    assert wrong.status_code == 401 and "not right" in wrong.text and 'name="code"' in wrong.text
    ok = await api.post(f"/portal/{ws}/sign-in/code", data={
        "email": email, "code": code_of(api, account_id), "csrf_token": csrf_token(wrong.text)})
    assert ok.status_code == 303 and ok.headers["location"] == f"/portal/{ws}/"
