"""A PUT of workspace settings that cannot be stored is refused whole: 422, nothing recorded,
and the workspace and its invites keep working."""

from __future__ import annotations

import pytest

from tests.helpers import unique
from tests.integration.conftest import auth

REFUSED = [
    {"name": None, "invite_ttl_hours": None},
    {"name": None},
    {"invite_ttl_hours": None},
    {"plan": None},
    {"portal_enabled": None},
    {"auto_invite_on_first_share": None},
    {"sign_in_method": None},
    {"branding": None},
    {"roles": None},
    {"roles": [None]},
    {"name": 12},
    {"invite_ttl_hours": "a week"},
    {"portal_enabled": "maybe"},
    {"branding": "blue"},
    {"roles": "owner"},
]


@pytest.mark.parametrize("body", REFUSED, ids=lambda body: ",".join(f"{k}={v!r}" for k, v in body.items()))
async def test_a_setting_that_may_not_be_null_or_of_another_type_is_refused_and_changes_nothing(
    api, staff_token, pro_workspace, body
):
    headers = auth(staff_token(pro_workspace))
    path = f"/v1/workspaces/{pro_workspace}"
    before = await api.get(path, headers=headers)
    version = api.app.state.portal_access.get_workspace(pro_workspace).version

    refused = await api.put(path, headers=headers, json=body)

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "validation_error"
    assert {e["field"].split(".")[0] for e in refused.json()["errors"]} == set(body)
    assert api.app.state.portal_access.get_workspace(pro_workspace).version == version
    after = await api.get(path, headers=headers)
    assert after.status_code == 200 and after.json() == before.json()
    invite = await api.post(f"{path}/invitations", headers=headers, json={"email": f"{unique('c')}@example.com"})
    assert invite.status_code == 201, invite.text


async def test_a_null_creates_no_workspace(api, staff_token):
    ws = unique("ws")
    refused = await api.put(f"/v1/workspaces/{ws}", headers=auth(staff_token(ws)), json={"name": None, "plan": "pro"})
    assert refused.status_code == 422
    assert (await api.get(f"/v1/workspaces/{ws}", headers=auth(staff_token(ws)))).status_code == 404


async def test_optional_settings_are_cleared_with_null(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    path = f"/v1/workspaces/{pro_workspace}"
    set_ = await api.put(path, headers=headers, json={
        "team_notify_email": "team@example.com",
        "branding": {"logo_url": "https://cdn.example.com/logo.png", "sender_name": "Pride"},
    })
    assert set_.status_code == 200, set_.text
    cleared = await api.put(path, headers=headers, json={
        "team_notify_email": None, "branding": {"logo_url": None, "sender_name": None},
    })
    assert cleared.status_code == 200, cleared.text
    body = (await api.get(path, headers=headers)).json()
    assert body["team_notify_email"] is None
    assert body["branding"]["logo_url"] is None and body["branding"]["sender_name"] is None
    invite = await api.post(f"{path}/invitations", headers=headers, json={"email": f"{unique('c')}@example.com"})
    assert invite.status_code == 201, invite.text
