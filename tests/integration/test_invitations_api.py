"""The staff command API on a real event store: settings, invites and their errors."""

from __future__ import annotations

import asyncio

from tests.helpers import unique
from tests.integration.conftest import auth


async def test_put_workspace_creates_then_updates_and_records_only_changes(api, staff_token):
    ws = unique("ws")
    headers = auth(staff_token(ws, role="admin"))
    created = await api.put(f"/v1/workspaces/{ws}", headers=headers, json={"name": "Pride", "plan": "pro"})
    assert created.status_code == 201
    assert created.json()["invite_ttl_hours"] == 168 and created.json()["sign_in_method"] == "magic_link"
    updated = await api.put(f"/v1/workspaces/{ws}", headers=headers, json={"branding": {"brand_color": "#112233"}})
    assert updated.status_code == 200
    body = updated.json()
    assert body["name"] == "Pride" and body["plan"] == "pro" and body["branding"]["brand_color"] == "#112233"
    got = await api.get(f"/v1/workspaces/{ws}", headers=auth(staff_token(ws, role="viewer")))
    assert got.json() == body
    app = api.app.state.portal_access
    workspace = app.get_workspace(ws)
    before = workspace.version
    again = await api.put(f"/v1/workspaces/{ws}", headers=headers, json={"branding": {"brand_color": "#112233"}})
    assert again.status_code == 200 and app.get_workspace(ws).version == before


async def test_workspace_settings_are_validated(api, staff_token):
    ws = unique("ws")
    response = await api.put(
        f"/v1/workspaces/{ws}", headers=auth(staff_token(ws)), json={"invite_ttl_hours": 0, "brand": "x"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert {e["field"] for e in body["errors"]} == {"invite_ttl_hours", "brand"}
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_only_owner_and_admin_change_settings(api, staff_token, pro_workspace):
    response = await api.put(
        f"/v1/workspaces/{pro_workspace}", headers=auth(staff_token(pro_workspace, role="dispatcher")), json={"plan": "free"}
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden_role"


async def test_invite_creates_a_pending_account_with_the_workspace_expiry(api, staff_token, pro_workspace):
    response = await api.post(
        f"/v1/workspaces/{pro_workspace}/invitations",
        headers=auth(staff_token(pro_workspace, role="dispatcher")),
        json={"email": "  Ana.Lima@Example.COM ", "name": "Ana Lima", "role": "charter_client", "phone": "+1 415 555 0123"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    account = api.app.state.portal_access.get_account(body["account_id"])
    assert account.email == "ana.lima@example.com" and account.phone == "+14155550123"
    invitation = api.app.state.portal_access.repository.get(body["invitation_id"])
    assert invitation.channels == ["email", "sms"]
    hours = (invitation.expires_at - invitation.created_on).total_seconds() / 3600
    assert round(hours) == 168


async def test_second_invite_of_the_same_email_is_a_duplicate(api, staff_token, pro_workspace):
    url, headers = f"/v1/workspaces/{pro_workspace}/invitations", auth(staff_token(pro_workspace))
    assert (await api.post(url, headers=headers, json={"email": "dup@example.com"})).status_code == 201
    second = await api.post(url, headers=headers, json={"email": "DUP@example.com"})
    assert second.status_code == 409 and second.json()["code"] == "duplicate_email"


async def test_concurrent_invites_of_one_email_exactly_one_wins(api, staff_token, pro_workspace):
    url, headers = f"/v1/workspaces/{pro_workspace}/invitations", auth(staff_token(pro_workspace))
    email = f"{unique('race')}@example.com"
    responses = await asyncio.gather(*(api.post(url, headers=headers, json={"email": email}) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7


async def test_contact_errors_have_their_own_codes(api, staff_token, pro_workspace):
    url, headers = f"/v1/workspaces/{pro_workspace}/invitations", auth(staff_token(pro_workspace))
    missing = await api.post(url, headers=headers, json={"name": "No Email"})
    assert missing.status_code == 422
    assert missing.json()["code"] == "email_required"
    assert missing.json()["detail"] == "This contact has no email address on file."
    blank = await api.post(url, headers=headers, json={"email": "   "})
    assert blank.json()["code"] == "email_required"
    bad = await api.post(url, headers=headers, json={"email": "not-an-email"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_email"
    phone = await api.post(url, headers=headers, json={"email": "p@example.com", "phone": "12345"})
    assert phone.status_code == 422 and phone.json()["code"] == "invalid_phone"
    unknown = await api.post(url, headers=headers, json={"email": "u@example.com", "emial": "typo"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "validation_error"
    malformed = await api.post(url, headers={**headers, "content-type": "application/json"}, content=b"{nope")
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_json"


async def test_workspace_gates_invites(api, staff_token):
    ws = unique("ws")
    headers = auth(staff_token(ws))
    await api.put(f"/v1/workspaces/{ws}", headers=headers, json={"plan": "free"})
    url = f"/v1/workspaces/{ws}/invitations"
    free = await api.post(url, headers=headers, json={"email": "a@example.com"})
    assert free.status_code == 403 and free.json()["code"] == "plan_required"
    await api.put(f"/v1/workspaces/{ws}", headers=headers, json={"plan": "pro", "portal_enabled": False})
    off = await api.post(url, headers=headers, json={"email": "a@example.com"})
    assert off.status_code == 403 and off.json()["code"] == "portal_disabled"


async def test_staff_auth_and_tenancy(api, staff_token, pro_workspace):
    url = f"/v1/workspaces/{pro_workspace}/invitations"
    assert (await api.post(url, json={"email": "a@example.com"})).status_code == 401
    bad = await api.post(url, headers=auth("not.a.jwt"), json={"email": "a@example.com"})
    assert bad.status_code == 401 and bad.json()["code"] == "unauthorized"
    other = await api.post(url, headers=auth(staff_token("another-ws")), json={"email": "a@example.com"})
    assert other.status_code == 404
    for role in ("agent", "viewer"):
        denied = await api.post(url, headers=auth(staff_token(pro_workspace, role=role)), json={"email": "a@example.com"})
        assert denied.status_code == 403 and denied.json()["code"] == "forbidden_role"


async def test_metrics_count_invites_by_outcome(api, staff_token, pro_workspace):
    def created() -> float:
        from prometheus_client import REGISTRY

        return REGISTRY.get_sample_value("porchlight_invites_total", {"outcome": "created"}) or 0.0

    before = created()
    url, headers = f"/v1/workspaces/{pro_workspace}/invitations", auth(staff_token(pro_workspace))
    assert (await api.post(url, headers=headers, json={"email": "m@example.com"})).status_code == 201
    assert (await api.post(url, headers=headers, json={"email": "m@example.com"})).status_code == 409
    assert created() == before + 1
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200 and 'porchlight_invites_total{outcome="duplicate_email"}' in metrics.text


async def test_oversized_and_non_json_bodies_are_refused_before_parsing(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    limit = api.app.state.settings.max_body_bytes
    url = f"/v1/workspaces/{pro_workspace}/invitations"
    email = f"{unique('big')}@example.com"
    huge = ('{"email": "%s", "name": "%s"}' % (email, "a" * limit)).encode()

    declared = await api.post(url, headers={**headers, "Content-Type": "application/json"}, content=huge)
    assert declared.status_code == 413 and declared.json()["code"] == "body_too_large"

    async def chunks():  # no Content-Length: the limit must hold while reading, too
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    chunked = await api.post(url, headers={**headers, "Content-Type": "application/json"}, content=chunks())
    assert chunked.status_code == 413 and chunked.json()["code"] == "body_too_large"

    as_text = await api.post(url, headers={**headers, "Content-Type": "text/plain"}, content=f'{{"email": "{email}"}}')
    assert as_text.status_code == 415 and as_text.json()["code"] == "unsupported_media_type"
    assert as_text.headers["content-type"].startswith("application/problem+json")

    # Nothing was half-applied: the same email can still be invited, once.
    assert (await api.post(url, headers=headers, json={"email": email})).status_code == 201


async def test_a_small_chunked_json_body_is_accepted(api, staff_token, pro_workspace):
    body = f'{{"email": "{unique("chunked")}@example.com"}}'.encode()

    async def chunks():
        yield body[:10]
        yield body[10:]

    response = await api.post(
        f"/v1/workspaces/{pro_workspace}/invitations",
        headers={**auth(staff_token(pro_workspace)), "Content-Type": "application/json"},
        content=chunks(),
    )
    assert response.status_code == 201, response.text


async def test_the_invite_names_the_staff_member_and_carries_the_phone_for_sms(api, staff_token, pro_workspace):
    """The token's `name` claim reaches the InviteSent the notifier renders ("Pat at ... invited
    you"), with the staff id (whose Gmail may send it) and the phone (for the SMS channel);
    a resend by another staff member names that one."""
    response = await api.post(
        f"/v1/workspaces/{pro_workspace}/invitations",
        headers=auth(staff_token(pro_workspace, role="dispatcher", sub="staff-pat", name="Pat  Quinn")),
        json={"email": "sms@example.com", "role": "customer", "phone": "+14155550124", "channels": ["email", "sms"]},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    history = await api.get(
        f"/v1/workspaces/{pro_workspace}/accounts/{body['account_id']}/history", headers=auth(staff_token(pro_workspace))
    )
    sent = next(e for e in history.json()["events"] if e["type"] == "InviteSent")
    assert sent["data"]["inviter_name"] == "Pat Quinn" and sent["data"]["inviter_staff_id"] == "staff-pat"
    assert sent["data"]["phone"] == "+14155550124" and sent["data"]["channels"] == ["email", "sms"]
    assert sent["actor"]["name"] == "Pat Quinn"

    resent = await api.post(
        f"/v1/workspaces/{pro_workspace}/accounts/{body['account_id']}/resend",
        headers=auth(staff_token(pro_workspace, role="admin", sub="staff-lee")),
    )
    assert resent.status_code == 200, resent.text
    history = await api.get(
        f"/v1/workspaces/{pro_workspace}/accounts/{body['account_id']}/history", headers=auth(staff_token(pro_workspace))
    )
    latest = [e for e in history.json()["events"] if e["type"] == "InviteSent"][-1]
    assert latest["data"]["inviter_staff_id"] == "staff-lee" and latest["data"]["inviter_name"] is None
    assert latest["data"]["phone"] == "+14155550124"
