"""History and point-in-time state from the event store, over the staff API."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from services.common import tokens
from services.invite_service.domain.invitation import Invitation

from tests.integration.conftest import auth

JSON = {"Accept": "application/json"}


@pytest.fixture
async def claimed(api, staff_token, pro_workspace):
    """An account invited by staff-7 and then claimed by the client, with the times between the steps."""
    ws = pro_workspace
    before_invite = datetime.now(UTC)
    invited = await api.post(
        f"/v1/workspaces/{ws}/invitations",
        headers=auth(staff_token(ws, sub="staff-7")),
        json={"email": "Tess@Example.com", "name": "Tess Traveler", "role": "customer",
              "resources": [{"type": "trip", "id": "T-9"}]},
    )
    assert invited.status_code == 201, invited.text
    body = invited.json()
    access = api.app.state.portal_access
    invitation = access.repository.get(body["invitation_id"])
    link = access.claim_link("http://testserver", invitation)
    between = datetime.now(UTC)
    claim = await api.post(link.removeprefix("http://testserver"), headers=JSON)
    assert claim.status_code == 200, claim.text
    after_claim = datetime.now(UTC)
    return {
        "ws": ws, "account_id": body["account_id"], "invitation_id": body["invitation_id"],
        "nonce": invitation.nonce, "link": link, "before_invite": before_invite, "between": between,
        "after_claim": after_claim,
    }


async def _history(api, token, ws, account_id):
    return await api.get(f"/v1/workspaces/{ws}/accounts/{account_id}/history", headers=auth(token))


async def test_account_history_lists_the_account_and_invitation_events_oldest_first(api, staff_token, claimed):
    ws, account_id, invitation_id = claimed["ws"], claimed["account_id"], claimed["invitation_id"]
    response = await _history(api, staff_token(ws), ws, account_id)
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    # In log order: an invite stores the account, then its invitation; a claim spends the link, then activates.
    assert [(e["type"], e["aggregate"], e["aggregate_id"], e["version"]) for e in events] == [
        ("AccountCreated", "account", account_id, 1),
        ("InviteSent", "invitation", invitation_id, 1),
        ("TokenClaimed", "invitation", invitation_id, 2),
        ("AccountActivated", "account", account_id, 2),
        ("SignedIn", "account", account_id, 3),  # a claim is the first sign-in
    ]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 5
    times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    assert all(claimed["before_invite"] <= t <= claimed["after_claim"] for t in times)
    created, sent = events[0]["data"], events[1]["data"]
    assert created["email"] == "tess@example.com" and created["role"] == "customer"
    assert created["resources"] == [{"type": "trip", "id": "T-9"}] and created["invitation_id"] == invitation_id
    assert sent["account_id"] == account_id and sent["sender"]["sender_name"] == "Pride Travelers"
    assert events[3]["data"] == {"invitation_id": invitation_id, "email": "tess@example.com", "name": "Tess Traveler",
                                 "workspace_name": "Pride Travelers"}


async def test_history_names_the_staff_member_who_invited_and_the_client_who_claimed(api, staff_token, claimed):
    ws, account_id = claimed["ws"], claimed["account_id"]
    events = (await _history(api, staff_token(ws), ws, account_id)).json()["events"]
    actors = {e["type"]: e["actor"] for e in events}
    staff = {"kind": "staff", "id": "staff-7", "reason": None}
    client = {"kind": "client", "id": account_id, "reason": None}
    assert actors == {"InviteSent": staff, "AccountCreated": staff, "TokenClaimed": client, "AccountActivated": client,
                      "SignedIn": client}


async def test_history_shows_no_link_token_or_nonce(api, staff_token, claimed):
    ws, account_id = claimed["ws"], claimed["account_id"]
    response = await _history(api, staff_token(ws), ws, account_id)
    token = claimed["link"].rsplit("/", 1)[1]
    assert claimed["nonce"] not in response.text
    assert token not in response.text and token.rsplit(".", 1)[1] not in response.text
    assert "nonce" not in response.text and "/claim/" not in response.text


async def test_an_invitation_a_later_account_event_names_joins_the_history(api, staff_token, pro_workspace):
    """As a resend will: a new invitation for the account, named by a later account event.
    Built from the aggregates here, since no command does it yet; the history must find it
    from the events alone."""
    ws = pro_workspace
    invited = (await api.post(f"/v1/workspaces/{ws}/invitations", headers=auth(staff_token(ws)),
                              json={"email": "again@example.com", "name": "Al", "role": "customer"})).json()
    access = api.app.state.portal_access
    account, first = access.get_account(invited["account_id"]), access.repository.get(invited["invitation_id"])
    staff = {"kind": "staff", "id": "staff-2", "reason": None}
    second = Invitation(workspace=ws, account_id=account.id, email=account.email, name=account.name,
                        nonce=tokens.new_nonce(), expires_at=first.expires_at, channels=["email"], method="manual",
                        sender={"workspace_name": "Pride Travelers", "sender_name": "Pride Travelers"}, actor=staff)
    client = {"kind": "client", "id": str(account.id), "reason": None}
    second.claim(at=datetime.now(UTC), actor=client)
    account.activate(invitation_id=second.id, actor=client)
    await access._commit(second, account)
    # An invitation of another account, named by nothing of this one, stays out.
    await api.post(f"/v1/workspaces/{ws}/invitations", headers=auth(staff_token(ws)),
                   json={"email": "someone.else@example.com", "role": "customer"})

    events = (await _history(api, staff_token(ws), ws, account.id)).json()["events"]
    assert [(e["type"], e["aggregate_id"]) for e in events] == [
        ("AccountCreated", str(account.id)),
        ("InviteSent", str(first.id)),
        ("InviteSent", str(second.id)),
        ("TokenClaimed", str(second.id)),
        ("AccountActivated", str(account.id)),
    ]
    assert second.nonce not in str(events) and first.nonce not in str(events)


@pytest.mark.parametrize("role", ["viewer", "agent", "dispatcher"])
async def test_read_only_and_writing_roles_may_read_history(api, staff_token, claimed, role):
    ws, account_id = claimed["ws"], claimed["account_id"]
    response = await _history(api, staff_token(ws, role=role), ws, account_id)
    assert response.status_code == 200 and len(response.json()["events"]) == 5
    assert (await api.get(f"/v1/workspaces/{ws}/history", headers=auth(staff_token(ws, role=role)))).status_code == 200


async def test_another_workspace_cannot_see_an_account_or_tell_it_exists(api, staff_token, claimed):
    ws, account_id, invitation_id = claimed["ws"], claimed["account_id"], claimed["invitation_id"]
    other = "other-" + ws
    # A token for another workspace: 404, as if the workspace did not exist.
    foreign_token = await _history(api, staff_token(other), ws, account_id)
    assert foreign_token.status_code == 404 and foreign_token.json()["code"] == "not_found"
    # Another workspace's own token asking for this account: the same answer as an unknown id.
    foreign = await _history(api, staff_token(other), other, account_id)
    unknown = await _history(api, staff_token(ws), ws, uuid4())
    not_an_account = await _history(api, staff_token(ws), ws, invitation_id)
    for response in (foreign, unknown, not_an_account):
        assert response.status_code == 404 and response.json()["code"] == "account_not_found", response.text
    assert foreign.json()["detail"] == unknown.json()["detail"] == not_an_account.json()["detail"]


async def test_workspace_history_shows_who_changed_which_setting(api, staff_token, pro_workspace):
    ws = pro_workspace
    changed = await api.put(f"/v1/workspaces/{ws}", headers=auth(staff_token(ws, role="admin", sub="admin-3")),
                            json={"auto_invite_on_first_share": True, "branding": {"brand_color": "#112233"}})
    assert changed.status_code == 200, changed.text
    response = await api.get(f"/v1/workspaces/{ws}/history", headers=auth(staff_token(ws, role="viewer")))
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [e["type"] for e in events] == ["WorkspaceCreated", "WorkspaceSettingsChanged"]
    assert [e["version"] for e in events] == [1, 2] and events[0]["position"] < events[1]["position"]
    assert all(e["aggregate"] == "workspace" for e in events)
    assert events[0]["actor"] == {"kind": "staff", "id": "staff-1", "reason": None}
    assert events[0]["data"]["settings"]["plan"] == "pro"
    assert events[1]["actor"] == {"kind": "staff", "id": "admin-3", "reason": None}
    # The settings that changed, with their new values; nothing else.
    changes = events[1]["data"]["changes"]
    assert set(changes) == {"auto_invite_on_first_share", "branding"}
    assert changes["auto_invite_on_first_share"] is True and changes["branding"]["brand_color"] == "#112233"


async def test_workspace_history_of_an_unknown_workspace_is_404(api, staff_token):
    ws = "never-created-" + uuid4().hex[:8]
    response = await api.get(f"/v1/workspaces/{ws}/history", headers=auth(staff_token(ws)))
    assert response.status_code == 404 and response.json()["code"] == "workspace_not_found"


async def _state(api, token, ws, account_id, at: datetime):
    return await api.get(f"/v1/workspaces/{ws}/accounts/{account_id}/state",
                         params={"as_of": at.isoformat()}, headers=auth(token))


async def test_state_as_of_replays_the_account_up_to_that_time(api, staff_token, claimed):
    ws, account_id = claimed["ws"], claimed["account_id"]
    token = staff_token(ws, role="viewer")
    before = await _state(api, token, ws, account_id, claimed["before_invite"])
    assert before.status_code == 404 and before.json()["code"] == "account_not_found"
    pending = await _state(api, token, ws, account_id, claimed["between"])
    assert pending.status_code == 200, pending.text
    assert pending.json()["status"] == "pending" and pending.json()["actions"] == ["resend", "revoke"]
    assert pending.json()["activated_at"] is None and pending.json()["version"] == 1
    assert pending.json()["invitation_id"] == claimed["invitation_id"] and pending.json()["expires_at"]
    active = (await _state(api, token, ws, account_id, claimed["after_claim"])).json()
    assert active["status"] == "active" and active["version"] == 3
    assert active["email"] == "tess@example.com" and active["name"] == "Tess Traveler" and active["role"] == "customer"
    invited_at = datetime.fromisoformat(active["invited_at"])
    activated_at = datetime.fromisoformat(active["activated_at"])
    assert claimed["before_invite"] <= invited_at <= claimed["between"] <= activated_at <= claimed["after_claim"]
    foreign = await _state(api, staff_token("other-" + ws), "other-" + ws, account_id, claimed["after_claim"])
    assert foreign.status_code == 404 and foreign.json()["code"] == "account_not_found"


async def test_state_as_of_needs_a_time_with_its_offset(api, staff_token, claimed):
    ws, account_id = claimed["ws"], claimed["account_id"]
    naive = await _state(api, staff_token(ws), ws, account_id, claimed["after_claim"].replace(tzinfo=None))
    assert naive.status_code == 422 and naive.json()["code"] == "validation_error"
    now = await api.get(f"/v1/workspaces/{ws}/accounts/{account_id}/state", headers=auth(staff_token(ws)))
    assert now.status_code == 200 and now.json()["status"] == "active"


async def test_the_account_route_with_as_of_answers_the_state_then_from_the_event_store(api, staff_token, claimed):
    """`GET .../accounts/{id}?as_of=T` (API.md) answers what `.../state?as_of=T` does, whatever the projection shows."""
    ws, account_id = claimed["ws"], claimed["account_id"]
    token = staff_token(ws, role="viewer")

    async def read(at: datetime):
        return await api.get(f"/v1/workspaces/{ws}/accounts/{account_id}", params={"as_of": at.isoformat()},
                             headers=auth(token))

    for at in (claimed["between"], claimed["after_claim"]):
        via_read_route, via_state = await read(at), await _state(api, token, ws, account_id, at)
        assert via_read_route.status_code == 200, via_read_route.text
        assert via_read_route.json() == via_state.json()
    assert (await read(claimed["between"])).json()["status"] == "pending"
    assert (await read(claimed["after_claim"])).json()["status"] == "active"
    before = await read(claimed["before_invite"])
    assert before.status_code == 404 and before.json()["code"] == "account_not_found"
    foreign = await api.get(f"/v1/workspaces/other-{ws}/accounts/{account_id}",
                            params={"as_of": claimed["after_claim"].isoformat()}, headers=auth(staff_token("other-" + ws)))
    assert foreign.status_code == 404 and foreign.json()["code"] == "account_not_found"
    naive = await read(claimed["after_claim"].replace(tzinfo=None))
    assert naive.status_code == 422 and naive.json()["code"] == "validation_error"


async def test_as_of_shows_who_disabled_the_account_and_why(api, staff_token, claimed):
    ws, account_id = claimed["ws"], claimed["account_id"]
    disabled = await api.post(f"/v1/workspaces/{ws}/accounts/{account_id}/disable", json={"reason": "left"},
                              headers=auth(staff_token(ws, sub="staff-9")))
    assert disabled.status_code == 200, disabled.text
    state = (await api.get(f"/v1/workspaces/{ws}/accounts/{account_id}", params={"as_of": datetime.now(UTC).isoformat()},
                           headers=auth(staff_token(ws)))).json()
    assert (state["status"], state["disabled_by"]["id"], state["disabled_reason"]) == ("disabled", "staff-9", "left")
    earlier = (await _state(api, staff_token(ws), ws, account_id, claimed["after_claim"])).json()
    assert (earlier["status"], earlier["disabled_by"], earlier["disabled_reason"]) == ("active", None, None)


# The auditors' CLI: the same history, from the event store, as JSON lines or CSV.


@pytest.fixture
def audit(base_env):
    from typer.testing import CliRunner

    from deploy.cli import app

    def run(*args: str):
        return CliRunner().invoke(app, ["audit", *args], env={"DATABASE_URL": base_env["DATABASE_URL"]})

    return run


def _jsonl(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_audit_history_prints_what_the_api_shows_as_json_lines(api, staff_token, claimed, audit):
    ws, account_id = claimed["ws"], claimed["account_id"]
    api_events = (await _history(api, staff_token(ws), ws, account_id)).json()["events"]
    assert _jsonl(audit("history", "--account", account_id)) == api_events
    assert claimed["nonce"] not in audit("history", "--account", account_id).stdout


async def test_audit_history_filters_by_type_actor_and_time(claimed, audit):
    account_id, between = claimed["account_id"], claimed["between"].isoformat()

    def types(*args: str) -> list[str]:
        return [e["type"] for e in _jsonl(audit("history", "--account", account_id, *args))]

    assert types("--type", "TokenClaimed", "--type", "AccountActivated") == ["TokenClaimed", "AccountActivated"]
    assert types("--actor", "staff-7") == ["AccountCreated", "InviteSent"]
    assert types("--actor", "client") == ["TokenClaimed", "AccountActivated", "SignedIn"]
    assert types("--since", between) == ["TokenClaimed", "AccountActivated", "SignedIn"]
    assert types("--until", between) == ["AccountCreated", "InviteSent"]
    assert types("--since", between, "--actor", "staff-7") == []


async def test_audit_history_of_a_workspace_as_csv(api, staff_token, pro_workspace, audit):
    ws = pro_workspace
    await api.put(f"/v1/workspaces/{ws}", headers=auth(staff_token(ws, role="admin", sub="admin-3")),
                  json={"auto_invite_on_first_share": True})
    result = audit("history", "--workspace", ws, "--format", "csv", "--actor", "admin-3")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 1
    assert rows[0]["type"] == "WorkspaceSettingsChanged" and rows[0]["version"] == "2"
    assert rows[0]["actor_kind"] == "staff" and rows[0]["actor_id"] == "admin-3" and rows[0]["aggregate"] == "workspace"
    assert json.loads(rows[0]["data"]) == {"changes": {"auto_invite_on_first_share": True}}
    everything = list(csv.DictReader(io.StringIO(audit("history", "--workspace", ws, "--format", "csv").stdout)))
    assert [r["type"] for r in everything] == ["WorkspaceCreated", "WorkspaceSettingsChanged"]


def test_audit_history_refuses_unclear_requests(audit):
    neither, both = audit("history"), audit("history", "--account", str(uuid4()), "--workspace", "ws")
    assert neither.exit_code == both.exit_code == 2 and "--account ID or --workspace" in both.output
    naive = audit("history", "--workspace", "ws", "--since", "2026-01-01T00:00:00")
    assert naive.exit_code == 2 and "no offset" in naive.output
    unknown = audit("history", "--account", str(uuid4()))
    assert unknown.exit_code == 1 and "No such account." in unknown.output and unknown.stdout == ""


async def test_audit_state_prints_the_account_as_of_a_time(claimed, audit):
    account_id = claimed["account_id"]
    pending = _jsonl(audit("state", "--account", account_id, "--as-of", claimed["between"].isoformat()))
    assert [(s["account_id"], s["status"]) for s in pending] == [(account_id, "pending")]
    active = _jsonl(audit("state", "--account", account_id, "--as-of", claimed["after_claim"].isoformat()))
    assert active[0]["status"] == "active"
    before = audit("state", "--account", account_id, "--as-of", claimed["before_invite"].isoformat())
    assert before.exit_code == 1 and "No such account." in before.output
