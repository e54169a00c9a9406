"""Claiming an invitation through the portal: a GET shows, only the POST consumes."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from uuid import UUID, uuid4

import httpx
import pytest

from services.common import tokens
from services.invite_service.api.rate_limits import FailureLimiter
from services.invite_service.commands import claims
from services.invite_service.domain import ids
from services.messages.rendering import format_expiry
from tests.helpers import poll_until, unique
from tests.integration.conftest import auth, serve

JSON = {"Accept": "application/json"}


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def cookie_header(value: str) -> dict[str, str]:
    return {"Cookie": f"porchlight_session={value}"}


async def _sessions_of(pg_pool, account_id: str) -> int:
    return await pg_pool.fetchval("SELECT count(*) FROM portal_sessions WHERE account_id = $1", UUID(account_id))


@pytest.fixture
async def invited(api, staff_token, pro_workspace):
    response = await api.post(
        f"/v1/workspaces/{pro_workspace}/invitations",
        headers=auth(staff_token(pro_workspace)),
        json={"email": "traveler@example.com", "name": "Tess Traveler", "resources": [{"type": "trip", "id": "T-1"}]},
    )
    assert response.status_code == 201
    body = response.json()
    access = api.app.state.portal_access
    link = access.claim_link("http://testserver", access.repository.get(body["invitation_id"]))
    return pro_workspace, body["account_id"], link.removeprefix("http://testserver")


async def test_get_shows_a_branded_page_and_consumes_nothing(api, invited):
    ws, account_id, path = invited
    for _ in range(3):  # a mail scanner may fetch it several times
        page = await api.get(path)
        assert page.status_code == 200
        assert "Pride Travelers invited you, Tess Traveler" in page.text
        assert '<form method="post"' in page.text and "#0B7A75" in page.text
    assert api.app.state.portal_access.get_account(account_id).status == "pending"


async def test_post_claims_activates_and_starts_a_session(api, invited):
    ws, account_id, path = invited
    claimed = await api.post(path, headers=JSON, json={})
    assert claimed.status_code == 200
    assert claimed.json()["status"] == "active" and claimed.json()["account_id"] == account_id
    cookie = claimed.cookies.get("porchlight_session")
    assert cookie and "httponly" in claimed.headers["set-cookie"].lower()
    session = await api.get(f"/portal/{ws}/session", headers=cookie_header(cookie))
    assert session.status_code == 200
    assert session.json()["email"] == "traveler@example.com"
    assert session.json()["resources"] == [{"type": "trip", "id": "T-1"}]
    assert api.app.state.portal_access.get_account(account_id).status == "active"


async def test_the_session_cookie_is_secure_when_the_portal_is_served_over_https(api, invited, monkeypatch):
    ws, _, path = invited
    # Behind a TLS-terminating proxy the request reaching us is plain HTTP.
    monkeypatch.setattr(api.app.state.settings, "public_base_url", "https://portal.example.com")
    claimed = await api.post(path, headers=JSON, json={})
    assert claimed.status_code == 200
    attributes = [a.strip().lower() for a in claimed.headers["set-cookie"].split(";")]
    assert "secure" in attributes and "httponly" in attributes and "samesite=lax" in attributes


async def test_concurrent_claims_of_one_link_exactly_one_wins(api, invited, pg_pool):
    ws, account_id, path = invited
    responses = await asyncio.gather(*(api.post(path, headers=JSON, json={}) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [200] + [410] * 7
    assert sum(1 for r in responses if r.cookies.get("porchlight_session")) == 1
    account = api.app.state.portal_access.get_account(account_id)
    assert account.status == "active" and account.version == 3  # created, activated and signed in once
    assert await _sessions_of(pg_pool, account_id) == 1  # the losers' sessions were never stored


async def test_form_post_redirects_to_the_portal(api, invited):
    ws, _, path = invited
    page = await api.get(path)  # sets the CSRF cookie the form's token pairs with
    claimed = await api.post(path, data={"csrf_token": csrf_token(page.text)})
    assert claimed.status_code == 303 and claimed.headers["location"] == f"/portal/{ws}/"


async def test_a_form_post_without_its_csrf_token_is_refused_and_consumes_nothing(api, invited):
    ws, account_id, path = invited
    await api.get(path)
    assert (await api.post(path, data={})).status_code == 403
    assert (await api.post(path, data={"csrf_token": "forged"})).status_code == 403
    assert api.app.state.portal_access.get_account(account_id).status == "pending"


async def test_a_used_link_is_no_longer_valid(api, invited):
    ws, _, path = invited
    assert (await api.post(path, headers=JSON, json={})).status_code == 200
    again = await api.post(path, headers=JSON, json={})
    assert again.status_code == 410
    assert again.json()["code"] == "link_invalid" and again.json()["detail"] == "That link is no longer valid."
    page = await api.get(path)
    assert page.status_code == 410 and "That link is no longer valid." in page.text


async def test_an_expired_link_is_no_longer_valid(api, invited, monkeypatch):
    ws, account_id, path = invited
    later = claims._now() + timedelta(days=7, seconds=1)
    monkeypatch.setattr(claims, "_now", lambda: later)
    assert (await api.get(path)).status_code == 410
    expired = await api.post(path, headers=JSON, json={})
    assert expired.status_code == 410 and expired.json()["code"] == "link_invalid"
    assert api.app.state.portal_access.get_account(account_id).status == "pending"


async def test_tampered_or_foreign_links_are_invalid(api, invited, staff_token):
    ws, _, path = invited
    head, mac = path.rsplit(".", 1)
    tampered = head + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    assert (await api.post(tampered, headers=JSON, json={})).status_code == 410
    assert (await api.post(path.replace(f"/portal/{ws}/", "/portal/other-ws/"), headers=JSON, json={})).status_code == 410
    assert (await api.post(f"/portal/{ws}/claim/garbage", headers=JSON, json={})).status_code == 410
    assert (await api.post(path, headers=JSON, json={})).status_code == 200  # the real one still works


async def test_a_client_opening_many_invalid_links_is_slowed_down(api, invited, monkeypatch):
    ws, account_id, path = invited
    monkeypatch.setattr(api.app.state, "claim_failures", FailureLimiter("claim", 3))
    for attempt in range(3):
        assert (await api.get(f"/portal/{ws}/claim/guess{attempt}.x")).status_code == 410
    refused = await api.post(f"/portal/{ws}/claim/guess.x", headers=JSON, json={})
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_attempts"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "instance" not in refused.json()  # the path holds a token
    # Over the limit even a good link waits, and is not consumed meanwhile.
    page = await api.get(path)
    assert page.status_code == 429 and "Too many attempts" in page.text
    assert (await api.post(path, headers=JSON, json={})).status_code == 429
    assert api.app.state.portal_access.get_account(account_id).status == "pending"


async def test_problems_on_portal_paths_never_echo_the_token(api, invited):
    _, _, path = invited
    token = path.rsplit("/", 1)[1]
    huge = await api.post(path, headers=JSON, content=b"x" * (api.app.state.settings.max_body_bytes + 1))
    assert huge.status_code == 413 and token not in huge.text


async def test_session_is_refused_without_a_valid_cookie(api, invited):
    ws, _, _ = invited
    assert (await api.get(f"/portal/{ws}/session")).status_code == 401
    assert (await api.get(f"/portal/{ws}/session", headers=cookie_header("forged"))).status_code == 401


async def test_sign_out_ends_the_session(api, invited):
    ws, _, path = invited
    cookie = (await api.post(path, headers=JSON, json={})).cookies["porchlight_session"]
    assert (await api.post(f"/portal/{ws}/sign-out", headers={**JSON, **cookie_header(cookie)}, json={})).status_code == 204
    assert (await api.get(f"/portal/{ws}/session", headers=cookie_header(cookie))).status_code == 401


async def test_an_unexpected_error_is_a_500_problem_and_its_log_line_has_no_token(api, invited, monkeypatch, caplog):
    ws, _, path = invited

    def broken(*_args, **_kwargs):
        raise RuntimeError("database exploded")

    monkeypatch.setattr(api.app.state.portal_access, "claim", broken)
    # As a server would: the app's answer, not the exception Starlette re-raises to its host.
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(path, headers=JSON, json={})
    assert response.status_code == 500 and response.json()["code"] == "internal_error"
    assert "database exploded" not in response.text
    token = path.rsplit("/", 1)[1]
    assert "unhandled error on POST /portal/{ws}/claim/{token}" in caplog.text
    assert token not in caplog.text


async def test_a_claim_whose_session_cannot_be_stored_spends_nothing_and_can_be_repeated(api, invited, pg_pool):
    ws, account_id, path = invited
    # The session insert fails inside the claim: a trigger refuses this one account's sessions.
    refuse = unique("refuse_session").replace("-", "_")
    await pg_pool.execute(f"""
        CREATE FUNCTION {refuse}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'sessions refused for this test'; END $$;
        CREATE TRIGGER {refuse} BEFORE INSERT ON portal_sessions FOR EACH ROW
            WHEN (NEW.account_id = '{account_id}') EXECUTE FUNCTION {refuse}();
    """)
    try:
        transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            failed = await client.post(path, headers=JSON, json={})
    finally:
        await pg_pool.execute(f"DROP TRIGGER {refuse} ON portal_sessions; DROP FUNCTION {refuse}();")
    assert failed.status_code == 500 and "porchlight_session" not in failed.headers.get("set-cookie", "")
    # Nothing of the claim stands: the account is pending, the invitation unclaimed, no session.
    access = api.app.state.portal_access
    account = access.get_account(account_id)
    assert account.status == "pending" and account.version == 1
    assert access.repository.get(account.invitation_id).claimed_at is None
    assert await _sessions_of(pg_pool, account_id) == 0
    # So the client can simply try again, and gets its session.
    again = await api.post(path, headers=JSON, json={})
    assert again.status_code == 200
    session = await api.get(f"/portal/{ws}/session", headers=cookie_header(again.cookies["porchlight_session"]))
    assert session.status_code == 200 and session.json()["account_id"] == account_id
    assert await _sessions_of(pg_pool, account_id) == 1


async def test_a_token_over_any_other_id_or_garbage_is_the_same_counted_410(api, api_settings, invited):
    """No existence oracle: a token built on an account's or a workspace's id (both derivable
    with uuid5) answers exactly like one on an unknown id, or garbage, and each one counts."""
    ws, account_id, _ = invited
    forger_key = b"not the secret key, but well formed".ljust(32)
    forged = [
        tokens.make_token(forger_key, tokens.CLAIM, UUID(account_id), "some-nonce"),
        tokens.make_token(forger_key, tokens.CLAIM, ids.workspace_id(ws), "some-nonce"),
        tokens.make_token(forger_key, tokens.CLAIM, uuid4(), "some-nonce"),
        "garbage",
    ]
    strict = api_settings.model_copy(update={"portal_failed_claims_per_minute": len(forged)})
    async with serve(strict) as client:
        answers = [await client.post(f"/portal/{ws}/claim/{token}", headers=JSON, json={}) for token in forged]
        assert [a.status_code for a in answers] == [410] * len(forged), [a.text for a in answers]
        assert answers[0].json()["code"] == "link_invalid"
        assert all(a.json() == answers[0].json() for a in answers)
        # Every one of them counted toward the limit: the next attempt, even a page view, waits.
        assert (await client.get(f"/portal/{ws}/claim/{forged[0]}")).status_code == 429
        assert (await client.post(f"/portal/{ws}/claim/{forged[1]}", headers=JSON, json={})).status_code == 429


async def test_the_page_gives_the_expiry_in_the_workspace_time_zone_as_the_email_does(api, invited, staff_token):
    ws, account_id, path = invited
    changed = await api.put(f"/v1/workspaces/{ws}", headers=auth(staff_token(ws)), json={"time_zone": "Asia/Tokyo"})
    assert changed.status_code == 200, changed.text
    expires_at = api.app.state.portal_access.repository.get(
        api.app.state.portal_access.get_account(account_id).invitation_id
    ).expires_at
    async def page_in_tokyo_time():  # the workspace read is cached for a second
        page = await api.get(path)
        return page if "Tokyo time" in page.text else None

    page = await poll_until(page_in_tokyo_time, timeout=5, what="the page in the new time zone")
    assert f"expires on {format_expiry(expires_at, 'Asia/Tokyo')}." in page.text
