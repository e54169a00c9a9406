"""Staff actions on a portal account over the API, against the real event store: every
action from every state, links dying and living, the resend limit, atomic reactivate,
sessions ending, concurrent staff, roles and tenancy."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest

from projections.main import run as run_projector
from services.common.log_follower import save_position
from services.common.settings import ProjectorSettings
from services.invite_service.commands import claims, lifecycle
from services.invite_service.relay import Relay
from tests.helpers import poll_until, unique
from tests.integration.test_notifier import notifier_settings, running
from tests.integration.conftest import auth, serve

JSON = {"Accept": "application/json"}
LINK_PATH = re.compile(r"/portal/[a-z0-9-]+/claim/[A-Za-z0-9_.-]+")
ACTIONS = ["resend", "revoke", "disable", "reenable", "reactivate", "password-reset"]
ALLOWED = {
    "pending": ["resend", "revoke"],
    "active": ["disable", "password-reset"],
    "disabled": ["reenable", "reactivate"],
}


async def invite(api, token, ws: str, email: str | None = None) -> str:
    response = await api.post(f"/v1/workspaces/{ws}/invitations", headers=auth(token(ws)),
                              json={"email": email or f"{unique('c')}@example.com", "name": "Tess Traveler"})
    assert response.status_code == 201, response.text
    return response.json()["account_id"]


def link_path(api, account_id: str) -> str:
    access = api.app.state.portal_access
    invitation = access.repository.get(access.get_account(account_id).invitation_id)
    return access.claim_link("http://testserver", invitation).removeprefix("http://testserver")


async def claim(api, account_id: str) -> str:
    claimed = await api.post(link_path(api, account_id), headers=JSON)
    assert claimed.status_code == 200, claimed.text
    return claimed.cookies["porchlight_session"]


async def act(api, token, ws: str, account_id: str, action: str, role: str = "owner", **kwargs):
    return await api.post(f"/v1/workspaces/{ws}/accounts/{account_id}/{action}",
                          headers=auth(token(ws, role=role)), **kwargs)


async def account_in(api, token, ws: str, state: str) -> str:
    """An account brought to `state` by the actions themselves."""
    account_id = await invite(api, token, ws)
    if state in ("active", "disabled"):
        await claim(api, account_id)
    if state == "disabled":
        assert (await act(api, token, ws, account_id, "disable")).status_code == 200
    if state == "revoked":
        assert (await act(api, token, ws, account_id, "revoke")).status_code == 200
    return account_id


# What each allowed action leads to, from each state (`revoked` is disabled, never active).
OUTCOMES = {
    ("pending", "resend"): "pending",
    ("pending", "revoke"): "disabled",
    ("active", "disable"): "disabled",
    ("active", "password-reset"): "active",
    ("disabled", "reenable"): "active",
    ("disabled", "reactivate"): "pending",
    ("revoked", "reenable"): "pending",
    ("revoked", "reactivate"): "pending",
}


@pytest.mark.parametrize("state", ["pending", "active", "disabled", "revoked"])
@pytest.mark.parametrize("action", ACTIONS)
async def test_every_action_from_every_state(api, staff_token, pro_workspace, state, action):
    ws = pro_workspace
    account_id = await account_in(api, staff_token, ws, state)
    version = api.app.state.portal_access.get_account(account_id).version
    status_before = "disabled" if state == "revoked" else state

    response = await act(api, staff_token, ws, account_id, action)

    body = response.json()
    expected = OUTCOMES.get((state, action))
    if expected is None:
        assert response.status_code == 409, response.text
        assert body["code"] == "invalid_state" and body["allowed"] == ALLOWED[status_before]
        assert all(allowed in body["detail"] for allowed in ALLOWED[status_before])
        assert api.app.state.portal_access.get_account(account_id).version == version  # nothing stored
        return
    assert response.status_code == 200, response.text
    assert body["status"] == expected and body["actions"] == ALLOWED[expected]
    assert body["account_id"] == account_id and body["position"] > 0
    assert api.app.state.portal_access.get_account(account_id).status == expected
    if expected == "disabled":
        assert body["disabled_by"] == "staff-1" and body["disabled_at"] is not None


async def test_disable_keeps_who_when_and_why(api, staff_token, pro_workspace):
    account_id = await account_in(api, staff_token, pro_workspace, "active")
    response = await act(api, staff_token, pro_workspace, account_id, "disable", role="dispatcher",
                         json={"reason": "left the company"})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["disabled_reason"]) == ("disabled", "left the company")
    assert body["activated_at"] is not None  # nothing deleted: its claim is still on record
    bad = await act(api, staff_token, pro_workspace, account_id, "reenable", json={"reason": 5, "x": 1})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    assert api.app.state.portal_access.get_account(account_id).status == "disabled"


async def test_resend_kills_the_old_link_at_once_and_the_new_one_works(api, staff_token, pro_workspace):
    ws = pro_workspace
    account_id = await invite(api, staff_token, ws)
    old_path = link_path(api, account_id)

    resent = await act(api, staff_token, ws, account_id, "resend")

    assert resent.status_code == 200
    new_path = link_path(api, account_id)
    assert new_path != old_path
    assert (await api.get(old_path)).status_code == 410
    assert (await api.post(old_path, headers=JSON)).json()["code"] == "link_invalid"
    assert (await api.post(new_path, headers=JSON)).status_code == 200


async def test_resend_works_after_the_link_expired_and_restarts_the_expiry(api, staff_token, pro_workspace, monkeypatch):
    ws = pro_workspace
    account_id = await invite(api, staff_token, ws)
    old_path = link_path(api, account_id)
    later = claims._now() + timedelta(days=8)
    monkeypatch.setattr(claims, "_now", lambda: later)
    monkeypatch.setattr(lifecycle, "_now", lambda: later)
    assert (await api.post(old_path, headers=JSON)).status_code == 410

    resent = await act(api, staff_token, ws, account_id, "resend")

    assert resent.status_code == 200
    expires_at = api.app.state.portal_access.repository.get(UUID(resent.json()["invitation_id"])).expires_at
    assert expires_at == later + timedelta(hours=168)
    assert (await api.post(link_path(api, account_id), headers=JSON)).json()["status"] == "active"


async def test_the_eleventh_resend_in_an_hour_is_refused_with_retry_after_on_any_replica(
    api, api_settings, staff_token, pro_workspace, monkeypatch
):
    ws = pro_workspace
    account_id = await invite(api, staff_token, ws)
    now = lifecycle._now()
    monkeypatch.setattr(lifecycle, "_now", lambda: now)  # all eleven within the same second
    for _ in range(10):
        assert (await act(api, staff_token, ws, account_id, "resend")).status_code == 200
    version = api.app.state.portal_access.get_account(account_id).version

    async with serve(api_settings) as other_replica:  # the count is in the event store, not in a process
        refused = await act(other_replica, staff_token, ws, account_id, "resend")
        refused_here = await act(api, staff_token, ws, account_id, "resend")

    for response in (refused, refused_here):
        assert response.status_code == 429 and response.json()["code"] == "too_many_resends"
        assert response.headers["Retry-After"] == "3601"  # when the first of the ten leaves the hour
    assert api.app.state.portal_access.get_account(account_id).version == version
    monkeypatch.setattr(lifecycle, "_now", lambda: now + timedelta(hours=1, seconds=1))
    assert (await act(api, staff_token, ws, account_id, "resend")).status_code == 200


async def test_reactivate_is_atomic(api, staff_token, pro_workspace, pg_pool):
    """Re-enabling and the fresh invite commit together or not at all: here the database refuses
    the new invitation's row, and the account stays disabled."""
    ws = pro_workspace
    account_id = await account_in(api, staff_token, ws, "disabled")
    version = api.app.state.portal_access.get_account(account_id).version
    trigger = unique("refuse").replace("-", "_")
    # A real refusal by PostgreSQL, for this workspace's reactivation invites only.
    await pg_pool.execute(f"""
        CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF position(convert_to('{ws}', 'UTF8') in NEW.state) > 0
             AND position(convert_to('"reactivate"', 'UTF8') in NEW.state) > 0
             AND NEW.topic LIKE '%InviteSent' THEN
            RAISE EXCEPTION 'refused for the test';
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER {trigger} BEFORE INSERT ON porchlight_events FOR EACH ROW EXECUTE FUNCTION {trigger}();
    """)
    try:
        failed = await act(api, staff_token, ws, account_id, "reactivate")
    finally:
        await pg_pool.execute(f"DROP TRIGGER {trigger} ON porchlight_events; DROP FUNCTION {trigger}();")
    assert failed.status_code == 500
    account = api.app.state.portal_access.get_account(account_id)
    assert (account.status, account.version) == ("disabled", version)

    reactivated = await act(api, staff_token, ws, account_id, "reactivate")
    assert reactivated.status_code == 200 and reactivated.json()["status"] == "pending"
    assert (await api.post(link_path(api, account_id), headers=JSON)).json()["status"] == "active"


async def test_disable_ends_a_live_portal_session_on_its_next_request(api, staff_token, pro_workspace):
    ws = pro_workspace
    account_id = await invite(api, staff_token, ws)
    cookie = await claim(api, account_id)
    session = {"Cookie": f"porchlight_session={cookie}"}
    assert (await api.get(f"/portal/{ws}/session", headers=session)).status_code == 200

    assert (await act(api, staff_token, ws, account_id, "disable")).status_code == 200

    assert (await api.get(f"/portal/{ws}/session", headers=session)).status_code == 401
    # Re-enabled, the account may sign in again, but the old session stays ended.
    assert (await act(api, staff_token, ws, account_id, "reenable")).status_code == 200
    assert (await api.get(f"/portal/{ws}/session", headers=session)).status_code == 401


async def test_a_revoked_link_answers_410(api, staff_token, pro_workspace):
    account_id = await invite(api, staff_token, pro_workspace)
    path = link_path(api, account_id)
    assert (await act(api, staff_token, pro_workspace, account_id, "revoke")).status_code == 200
    assert (await api.get(path)).status_code == 410
    # Re-enabled without a new invite, the revoked link stays dead: staff resend to send a live one.
    assert (await act(api, staff_token, pro_workspace, account_id, "reenable")).json()["status"] == "pending"
    assert (await api.post(path, headers=JSON)).status_code == 410


async def test_two_staff_disabling_at_once_one_wins_the_other_is_told_why(api, staff_token, pro_workspace):
    account_id = await account_in(api, staff_token, pro_workspace, "active")
    responses = await asyncio.gather(
        act(api, staff_token, pro_workspace, account_id, "disable", json={"reason": "a"}),
        act(api, staff_token, pro_workspace, account_id, "disable", json={"reason": "b"}),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    refused = next(r for r in responses if r.status_code == 409).json()
    assert refused["code"] == "invalid_state" and refused["allowed"] == ["reenable", "reactivate"]
    assert api.app.state.portal_access.get_account(account_id).access_epoch == 1  # disabled once


async def test_concurrent_actions_on_one_account_never_lose_an_update(api, staff_token, pro_workspace):
    ws = pro_workspace
    account_id = await invite(api, staff_token, ws)
    access = api.app.state.portal_access
    version = access.get_account(account_id).version

    responses = await asyncio.gather(
        act(api, staff_token, ws, account_id, "resend"),
        act(api, staff_token, ws, account_id, "revoke"),
        act(api, staff_token, ws, account_id, "resend"),
        act(api, staff_token, ws, account_id, "resend"),
    )

    codes = [r.status_code for r in responses]
    assert codes[1] == 200 and set(codes) <= {200, 409}
    assert all(r.json()["code"] == "invalid_state" for r in responses if r.status_code == 409)
    account = access.get_account(account_id)
    # Each success is exactly one event on the account; each refusal none.
    assert account.version == version + codes.count(200)
    assert account.status == "disabled"


@pytest.mark.parametrize("role", ["agent", "viewer"])
async def test_read_only_roles_may_not_act(api, staff_token, pro_workspace, role):
    account_id = await invite(api, staff_token, pro_workspace)
    response = await act(api, staff_token, pro_workspace, account_id, "revoke", role=role)
    assert response.status_code == 403 and response.json()["code"] == "forbidden_role"
    assert api.app.state.portal_access.get_account(account_id).status == "pending"


async def test_tenancy_and_unknown_accounts_leak_nothing(api, staff_token, pro_workspace):
    ws = pro_workspace
    other_ws = unique("ws")
    assert (await api.put(f"/v1/workspaces/{other_ws}", headers=auth(staff_token(other_ws)),
                          json={"plan": "pro"})).status_code == 201
    theirs = await invite(api, staff_token, other_ws)
    ours = await invite(api, staff_token, ws)

    wrong_token = await api.post(f"/v1/workspaces/{ws}/accounts/{ours}/revoke", headers=auth(staff_token(other_ws)))
    assert wrong_token.status_code == 404

    unknown = await act(api, staff_token, ws, str(uuid4()), "revoke")
    foreign = await act(api, staff_token, ws, theirs, "revoke")
    not_an_account = await act(api, staff_token, ws, str(api.app.state.portal_access.get_account(ours).invitation_id),
                               "revoke")
    for response in (unknown, foreign, not_an_account):
        assert response.status_code == 404 and response.json()["code"] == "account_not_found"
        assert response.json()["detail"] == unknown.json()["detail"]
    assert api.app.state.portal_access.get_account(theirs).status == "pending"

    no_such_action = await act(api, staff_token, ws, ours, "delete")
    assert no_such_action.status_code == 422


@pytest.fixture
async def relay(api, pg_pool, kafka_bootstrap, topic_names):
    """The relay, running as its process does, from this test's position on."""
    access = api.app.state.portal_access
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    task = asyncio.create_task(Relay(access, pg_pool, kafka_bootstrap, topic_names["access"], relay_name).run())
    yield
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def read_side(relay, base_env, monkeypatch):
    """The relay and the projector."""
    for name, value in base_env.items():
        monkeypatch.setenv(name, value)
    task = asyncio.create_task(run_projector(ProjectorSettings(projector_group_id=unique("projector"))))
    yield
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_resend_and_reactivate_email_a_fresh_link_through_the_notifier(
    api, staff_token, pro_workspace, relay, base_env, smtp_server
):
    """No notifier code of their own: a resend's new invitation records InviteSent, which the
    notifier sends like any invite."""
    ws = pro_workspace
    email = f"{unique('mail')}@example.com"
    account_id = await invite(api, staff_token, ws, email)
    async with running(notifier_settings(base_env, smtp_server.port)):
        first = (await smtp_server.wait_for(email))[0]
        assert (await act(api, staff_token, ws, account_id, "resend")).status_code == 200
        second = (await smtp_server.wait_for(email, count=2))[1]
        old_path, new_path = (LINK_PATH.search(m.part("plain")).group(0) for m in (first, second))
        # The resend says so in its subject (services/messages/templates/invite/subject.txt).
        assert old_path != new_path and second.message["Subject"] == "Reminder: " + first.message["Subject"]
        assert (await api.post(old_path, headers=JSON)).status_code == 410

        assert (await act(api, staff_token, ws, account_id, "revoke")).status_code == 200
        assert (await act(api, staff_token, ws, account_id, "reactivate")).status_code == 200
        third = (await smtp_server.wait_for(email, count=3))[2]
        newest = LINK_PATH.search(third.part("plain")).group(0)
        assert (await api.post(new_path, headers=JSON)).status_code == 410
        assert (await api.post(newest, headers=JSON)).json()["status"] == "active"


async def test_the_status_list_shows_each_change(api, staff_token, pro_workspace, read_side):
    ws = pro_workspace
    account_id = await invite(api, staff_token, ws)

    async def shown(predicate, what: str) -> dict:
        async def probe():
            response = await api.get(f"/v1/workspaces/{ws}/accounts/{account_id}", headers=auth(staff_token(ws, "viewer")))
            return response.json() if response.status_code == 200 and predicate(response.json()) else None

        return await poll_until(probe, what=what)

    first = await shown(lambda a: a["last_invite_sent_at"] is not None, "the invited account")

    resent = (await act(api, staff_token, ws, account_id, "resend")).json()
    row = await shown(lambda a: a["last_invite_sent_at"] != first["last_invite_sent_at"], "the resend")
    assert row["status"] == "pending" and row["invited_at"] == first["invited_at"]
    assert datetime.fromisoformat(row["expires_at"]) == datetime.fromisoformat(resent["expires_at"])

    await act(api, staff_token, ws, account_id, "revoke", role="dispatcher")
    row = await shown(lambda a: a["status"] == "disabled", "the revoke")
    assert row["disabled_at"] is not None and row["actions"] == ["reenable", "reactivate"]

    await act(api, staff_token, ws, account_id, "reactivate")
    row = await shown(lambda a: a["status"] == "pending", "the reactivation")
    assert row["disabled_at"] is None and row["disabled_by"] is None

    await claim(api, account_id)
    await shown(lambda a: a["status"] == "active", "the claim")

    await act(api, staff_token, ws, account_id, "disable", json={"reason": "left"})
    row = await shown(lambda a: a["status"] == "disabled", "the disable")
    assert (row["disabled_by"], row["disabled_reason"]) == ("staff-1", "left")
    listed = (await api.get(f"/v1/workspaces/{ws}/accounts", params={"status": "disabled"},
                            headers=auth(staff_token(ws, "viewer")))).json()["items"]
    assert [(a["account_id"], a["disabled_by"], a["disabled_reason"]) for a in listed] == [
        (str(account_id), "staff-1", "left")
    ]

    await act(api, staff_token, ws, account_id, "reenable")
    row = await shown(lambda a: a["status"] == "active", "the re-enable")
    assert row["disabled_at"] is None and row["actions"] == ["disable", "password-reset"]
    assert row["disabled_reason"] is None
