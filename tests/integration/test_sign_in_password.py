"""Passwords: set when claiming (NIST rules, said on the page), checked with argon2id from a
table outside the event store, and reset by the client by email."""

from __future__ import annotations

from uuid import UUID

import pytest

from tests.integration.sign_in_helpers import (
    GOOD_PASSWORD, JSON, account, active_client, claim_path, cookie, csrf_token, event_types, invite, reset_path,
    unknown_email, workspace,
)


@pytest.mark.parametrize(("password", "why"), [
    (None, "at least 12 characters"),
    ("short pass", "at least 12 characters"),
    ("{local}-rocks-2026", "email address"),
    ("I am Traveler 2026!", "your name"),
    ("password1234", "too common"),
    ("QWERTYUIOP123", "too common"),
])
async def test_claiming_refuses_a_weak_password_and_says_why(api, staff_token, password, why):
    ws = await workspace(api, staff_token, "password")
    email, account_id = await invite(api, staff_token, ws)
    path = claim_path(api, account_id)
    body = {} if password is None else {"password": password.format(local=email.split("@")[0])}
    refused = await api.post(path, headers=JSON, json=body)
    assert refused.status_code == 422 and refused.json()["code"] == "weak_password"
    assert why in refused.json()["detail"]
    assert account(api, account_id).status == "pending"
    page = await api.get(path)
    form = await api.post(path, data={**body, "csrf_token": csrf_token(page.text)})
    assert form.status_code == 422 and why in form.text and 'type="password"' in form.text


async def test_claim_sets_the_password_outside_the_event_store(api, staff_token, pg_pool):
    ws = await workspace(api, staff_token, "password")
    email, account_id, session = await active_client(api, staff_token, ws, password=GOOD_PASSWORD)
    assert "PasswordSet" in event_types(api, account_id)
    stored = await pg_pool.fetchval("SELECT password_hash FROM portal_credentials WHERE account_id = $1", UUID(account_id))
    assert stored.startswith("$argon2id$")
    events = await pg_pool.fetch("SELECT state FROM porchlight_events WHERE originator_id = $1", UUID(account_id))
    assert not any(GOOD_PASSWORD.encode() in bytes(r["state"]) or stored.encode() in bytes(r["state"]) for r in events)


async def test_sign_in_with_password_and_the_same_401_for_a_wrong_one_or_an_unknown_email(api, staff_token):
    ws = await workspace(api, staff_token, "password")
    email, account_id, _ = await active_client(api, staff_token, ws, password=GOOD_PASSWORD)
    ok = await api.post(f"/portal/{ws}/sign-in/password", headers=JSON, json={"email": email, "password": GOOD_PASSWORD})
    assert ok.status_code == 200 and account(api, account_id).sign_ins[0]["method"] == "password"
    wrong = await api.post(f"/portal/{ws}/sign-in/password", headers=JSON, json={"email": email, "password": "nope" * 4})
    nobody = await api.post(f"/portal/{ws}/sign-in/password", headers=JSON,
                            json={"email": unknown_email(), "password": "nope" * 4})
    assert wrong.status_code == nobody.status_code == 401 and wrong.json() == nobody.json()
    assert event_types(api, account_id)[-1] == "VerificationFailed"


async def test_forgot_password_resets_ends_other_sessions_and_signs_in(api, staff_token):
    ws = await workspace(api, staff_token, "password")
    email, account_id, old_session = await active_client(api, staff_token, ws, password=GOOD_PASSWORD)
    known = await api.post(f"/portal/{ws}/password/forgot", headers=JSON, json={"email": email})
    unknown = await api.post(f"/portal/{ws}/password/forgot", headers=JSON, json={"email": unknown_email()})
    assert known.status_code == unknown.status_code == 202 and known.json() == unknown.json()
    assert event_types(api, account_id)[-1] == "PasswordResetRequested"
    path = reset_path(api, ws, account_id)
    page = await api.get(path)  # shows; consumes nothing
    assert page.status_code == 200 and "Choose a new password" in page.text
    weak = await api.post(path, data={"password": "short", "csrf_token": csrf_token(page.text)})
    assert weak.status_code == 422 and "at least 12" in weak.text
    new_password = "marmalade lighthouse 1987"
    done = await api.post(path, data={"password": new_password, "csrf_token": csrf_token(page.text)})
    assert done.status_code == 303
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(old_session))).status_code == 401
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(done.cookies["porchlight_session"]))).status_code == 200
    assert (await api.post(path, headers=JSON, json={"password": "another good one 55"})).status_code == 410
    old = await api.post(f"/portal/{ws}/sign-in/password", headers=JSON, json={"email": email, "password": GOOD_PASSWORD})
    new = await api.post(f"/portal/{ws}/sign-in/password", headers=JSON, json={"email": email, "password": new_password})
    assert old.status_code == 401 and new.status_code == 200


async def test_the_password_page_offers_forgot_password(api, staff_token):
    ws = await workspace(api, staff_token, "password")
    page = await api.get(f"/portal/{ws}/sign-in")
    assert 'type="password"' in page.text and f"/portal/{ws}/password/forgot" in page.text
    forgot = await api.get(f"/portal/{ws}/password/forgot")
    sent = await api.post(f"/portal/{ws}/password/forgot", data={"email": unknown_email(), "csrf_token": csrf_token(forgot.text)})
    assert sent.status_code == 202 and "Check your email" in sent.text
