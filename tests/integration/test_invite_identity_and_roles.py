"""One account per address however it is spelt; the email goes to the address as typed;
an unknown role's error lists the roles the workspace accepts."""

from __future__ import annotations

from services.invite_service.contacts import email_identity
from services.invite_service.domain import ids
from tests.helpers import unique
from tests.integration.conftest import auth


def invite_url(ws: str) -> str:
    return f"/v1/workspaces/{ws}/invitations"


async def test_mixed_case_address_is_one_account_and_is_sent_as_typed(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    typed = f"{unique('Ana.Lima')}@Example.COM"
    first = await api.post(invite_url(pro_workspace), headers=headers, json={"email": typed})
    assert first.status_code == 201
    assert first.json()["account_id"] == str(ids.account_id(pro_workspace, typed.lower()))
    store = api.app.state.portal_access
    assert store.get_account(first.json()["account_id"]).email == typed.lower()
    assert store.repository.get(first.json()["invitation_id"]).email == typed  # the InviteSent the notifier sends to
    again = await api.post(invite_url(pro_workspace), headers=headers, json={"email": typed.lower()})
    assert again.status_code == 409 and again.json()["code"] == "duplicate_email"


async def test_idn_domain_in_unicode_or_punycode_is_one_account(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    local = unique("jo")
    first = await api.post(invite_url(pro_workspace), headers=headers, json={"email": f"{local}@Bücher.Example"})
    assert first.status_code == 201, first.text
    assert first.json()["account_id"] == str(ids.account_id(pro_workspace, f"{local}@bücher.example"))
    assert email_identity(f"{local.upper()}@xn--bcher-kva.example") == f"{local}@bücher.example"
    again = await api.post(invite_url(pro_workspace), headers=headers, json={"email": f"{local.upper()}@xn--bcher-kva.example"})
    assert again.status_code == 409 and again.json()["code"] == "duplicate_email"
    bulk = await api.post(
        f"{invite_url(pro_workspace)}/bulk", headers=headers, json={"invitations": [{"email": f"{local}@XN--BCHER-KVA.example"}]}
    )
    assert bulk.json()["results"][0]["status"] == "duplicate"
    assert bulk.json()["results"][0]["account_id"] == first.json()["account_id"]


async def test_unknown_role_lists_the_roles_the_workspace_accepts(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    await api.put(f"/v1/workspaces/{pro_workspace}", headers=headers, json={"roles": ["assistant", "homeowner"]})
    response = await api.post(invite_url(pro_workspace), headers=headers, json={"email": "a@example.com", "role": "skipper"})
    assert response.status_code == 422 and response.json()["code"] == "unknown_role"
    accepted = ["owner", "charter_client", "customer", "assistant", "homeowner"]
    assert response.json()["accepted_roles"] == accepted
    assert "owner, charter_client, customer, assistant, homeowner" in response.json()["detail"]
    own = await api.post(invite_url(pro_workspace), headers=headers, json={"email": f"{unique('h')}@example.com", "role": "homeowner"})
    assert own.status_code == 201


async def test_settings_show_built_in_roles_beside_the_workspace_roles(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    await api.put(f"/v1/workspaces/{pro_workspace}", headers=headers, json={"roles": ["assistant"]})
    settings = (await api.get(f"/v1/workspaces/{pro_workspace}", headers=auth(staff_token(pro_workspace, role="viewer")))).json()
    assert settings["roles"] == ["assistant"]
    assert settings["built_in_roles"] == ["owner", "charter_client", "customer"]
