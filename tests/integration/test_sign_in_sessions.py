"""Sessions: server side, ended by sign-out, disable, a password reset, idleness or age, and
checked without replaying the account; and the hand-off to the host app's portal."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from services.invite_service.signin import handoff
from tests.integration.conftest import auth, serve
from tests.integration.sign_in_helpers import JSON, active_client, claim_path, cookie, invite, workspace


async def test_disable_ends_the_session_on_its_next_request(api, staff_token):
    ws = await workspace(api, staff_token, "magic_link")
    _, account_id, session = await active_client(api, staff_token, ws)
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(session))).status_code == 200
    disabled = await api.post(f"/v1/workspaces/{ws}/accounts/{account_id}/disable", headers=auth(staff_token(ws)), json={})
    assert disabled.status_code == 200
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(session))).status_code == 401
    # Re-enabling does not revive a session the disable ended: the epoch moved on.
    await api.post(f"/v1/workspaces/{ws}/accounts/{account_id}/reenable", headers=auth(staff_token(ws)), json={})
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(session))).status_code == 401


async def test_idle_and_absolute_lifetimes(api, staff_token, pg_pool):
    ws = await workspace(api, staff_token, "magic_link")
    _, account_id, idle = await active_client(api, staff_token, ws)
    _, other_id, old = await active_client(api, staff_token, ws)
    await pg_pool.execute("UPDATE portal_sessions SET last_seen_at = now() - interval '12 hours 1 minute' "
                          "WHERE account_id = $1", UUID(account_id))
    await pg_pool.execute("UPDATE portal_sessions SET expires_at = now() - interval '1 second' WHERE account_id = $1",
                          UUID(other_id))
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(idle))).status_code == 401
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(old))).status_code == 401


async def test_checking_a_session_reads_no_events(api, staff_token, monkeypatch):
    ws = await workspace(api, staff_token, "magic_link")
    _, account_id, session = await active_client(api, staff_token, ws)
    access = api.app.state.portal_access

    def no_replay(*_args, **_kwargs):
        raise AssertionError("a session check read the event store")

    monkeypatch.setattr(access.recorder, "select_events", no_replay)
    monkeypatch.setattr(access.repository, "get", no_replay)
    answer = await api.get(f"/portal/{ws}/session", headers=cookie(session))
    assert answer.status_code == 200
    assert answer.json() == {"account_id": account_id, "email": answer.json()["email"], "name": "Tess Traveler",
                             "role": "customer", "resources": [{"type": "trip", "id": "T-1"}]}


async def test_hand_off_to_the_host_portal_with_a_one_time_code(api, staff_token):
    ws = await workspace(api, staff_token, "magic_link", portal_url="https://app.example.com/portal?tab=trips")
    email, account_id = await invite(api, staff_token, ws)
    claimed = await api.post(claim_path(api, account_id), headers=JSON, json={})
    target = urlsplit(claimed.json()["redirect_to"])
    assert (target.scheme, target.netloc, target.path) == ("https", "app.example.com", "/portal")
    query = parse_qs(target.query)
    assert query["tab"] == ["trips"] and len(query["code"][0]) > 20
    code = query["code"][0]
    host = auth(staff_token(ws, role="viewer"))
    exchanged = await api.post(f"/v1/workspaces/{ws}/sessions/exchange", headers=host, json={"code": code})
    assert exchanged.status_code == 200, exchanged.text
    body = exchanged.json()
    assert body["account_id"] == account_id and body["email"] == email and body["role"] == "customer"
    assert body["resources"] == [{"type": "trip", "id": "T-1"}] and body["expires_at"]
    again = await api.post(f"/v1/workspaces/{ws}/sessions/exchange", headers=host, json={"code": code})
    assert again.status_code == 410 and again.json()["code"] == "code_invalid"
    other_ws = auth(staff_token("another-ws"))
    assert (await api.post(f"/v1/workspaces/{ws}/sessions/exchange", headers=other_ws, json={"code": code})).status_code == 404
    session_url = f"/v1/workspaces/{ws}/sessions/{body['session_id']}"
    assert (await api.get(session_url, headers=host)).status_code == 200
    # It is the client's portal session: disabling the account ends it for the host too.
    await api.post(f"/v1/workspaces/{ws}/accounts/{account_id}/disable", headers=auth(staff_token(ws)), json={})
    gone = await api.get(session_url, headers=host)
    assert gone.status_code == 404 and gone.json()["code"] == "session_not_found"


async def test_the_host_app_can_end_a_session(api, staff_token):
    ws = await workspace(api, staff_token, "magic_link", portal_url="https://app.example.com/")
    _, account_id = await invite(api, staff_token, ws)
    claimed = await api.post(claim_path(api, account_id), headers=JSON, json={})
    code = parse_qs(urlsplit(claimed.json()["redirect_to"]).query)["code"][0]
    host = auth(staff_token(ws))
    session_id = (await api.post(f"/v1/workspaces/{ws}/sessions/exchange", headers=host, json={"code": code})).json()["session_id"]
    assert (await api.delete(f"/v1/workspaces/{ws}/sessions/{session_id}", headers=host)).status_code == 204
    assert (await api.get(f"/v1/workspaces/{ws}/sessions/{session_id}", headers=host)).status_code == 404
    assert (await api.get(f"/portal/{ws}/session", headers=cookie(claimed.cookies["porchlight_session"]))).status_code == 401


async def test_a_plain_http_portal_url_is_refused_outside_dev(api, api_settings, staff_token):
    ws = await workspace(api, staff_token, "magic_link")
    refused = await api.put(f"/v1/workspaces/{ws}", headers=auth(staff_token(ws)),
                            json={"portal_url": "http://app.example.com/"})
    assert refused.status_code == 422 and refused.json()["code"] == "insecure_portal_url"
    async with serve(api_settings.model_copy(update={"allow_http_portal_url": True})) as dev:
        ws = await workspace(dev, staff_token, "magic_link", portal_url="http://localhost:3000/")
        _, account_id = await invite(dev, staff_token, ws)
        claimed = await dev.post(claim_path(dev, account_id), headers=JSON, json={})
        assert claimed.json()["redirect_to"].startswith("http://localhost:3000/?code=")
    # Stored under dev, but served by a production API: not followed.
    claimed = await api.post(claim_path(api, (await invite(api, staff_token, ws))[1]), headers=JSON, json={})
    assert claimed.json()["redirect_to"] == f"/portal/{ws}/"


def test_the_redirect_is_only_ever_the_stored_setting():
    assert handoff.usable_portal_url("javascript:alert(1)", allow_http=True) is None
    assert handoff.usable_portal_url("//evil.example.com", allow_http=True) is None
    assert handoff.usable_portal_url("https://app.example.com/p", allow_http=False) == "https://app.example.com/p"


async def test_the_signed_out_page_offers_sign_in(api, staff_token):
    ws = await workspace(api, staff_token, "code")
    page = await api.get(f"/portal/{ws}/")
    assert page.status_code == 401 and "You are not signed in." in page.text
    assert f'action="/portal/{ws}/sign-in"' in page.text and "Email me a code" in page.text


async def test_sign_ins_reach_the_status_list(pg_pool):
    """SignedIn (a claim counts as the first) sets last_sign_in_at and counts sign-ins; a
    re-published one counts once."""
    from datetime import timedelta

    from tests.helpers import unique
    from tests.integration.envelopes import AccountStory, project

    story = AccountStory(unique(), f"{unique('si')}@example.com")
    first_at, later_at = story.at + timedelta(hours=1), story.at + timedelta(days=2)
    created, sent, activated = story.created(), story.invite_sent(), story.activated(at=first_at)
    claim = story.other("SignedIn", {"method": "claim", "at": first_at.isoformat(), "ip": "203.0.113.7"})
    later = story.other("SignedIn", {"method": "magic_link", "at": later_at.isoformat()})
    await project(pg_pool, created, sent, activated, claim, later)
    assert await project(pg_pool, later) == [False]
    row = await pg_pool.fetchrow("SELECT last_sign_in_at, sign_ins FROM account_status WHERE account_id = $1",
                                 story.account_id)
    assert row["last_sign_in_at"] == later_at and row["sign_ins"] == 2
