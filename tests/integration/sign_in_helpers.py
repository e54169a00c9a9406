"""Shared steps of the sign-in tests: a workspace per method, an invited or active client,
and the links and codes the notifier would email, derived here with the same key (the
end-to-end tests read them from the delivered email instead)."""

from __future__ import annotations

import re
from uuid import UUID

import httpx

from services.common import tokens
from services.invite_service.domain import ids
from tests.conftest import SECRET_KEY
from tests.helpers import unique
from tests.integration.conftest import auth

JSON = {"Accept": "application/json"}
KEY = SECRET_KEY.encode()
GOOD_PASSWORD = "violet tangerine harbour 42"


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


async def workspace(api: httpx.AsyncClient, staff_token, method: str, **settings) -> str:
    ws = unique("ws")
    response = await api.put(f"/v1/workspaces/{ws}", headers=auth(staff_token(ws)), json={
        "name": "Pride Travelers", "plan": "pro", "portal_enabled": True, "sign_in_method": method,
        "branding": {"sender_name": "Pride Travelers", "brand_color": "#0B7A75"}, **settings})
    assert response.status_code in (200, 201), response.text
    return ws


async def invite(api: httpx.AsyncClient, staff_token, ws: str, email: str | None = None, **extra) -> tuple[str, str]:
    email = email or f"{unique('tess')}@example.com"
    response = await api.post(f"/v1/workspaces/{ws}/invitations", headers=auth(staff_token(ws)),
                              json={"email": email, "name": "Tess Traveler", "role": "customer",
                                    "resources": [{"type": "trip", "id": "T-1"}], **extra})
    assert response.status_code == 201, response.text
    return email, response.json()["account_id"]


def claim_path(api: httpx.AsyncClient, account_id: str) -> str:
    access = api.app.state.portal_access
    invitation = access.repository.get(access.get_account(account_id).invitation_id)
    return access.claim_link("http://testserver", invitation).removeprefix("http://testserver")


async def active_client(api, staff_token, ws: str, password: str | None = None) -> tuple[str, str, str]:
    """Invite and claim: (email, account id, session cookie)."""
    email, account_id = await invite(api, staff_token, ws)
    body = {"password": password} if password else {}
    claimed = await api.post(claim_path(api, account_id), headers=JSON, json=body)
    assert claimed.status_code == 200, claimed.text
    return email, account_id, claimed.cookies["porchlight_session"]


def account(api, account_id: str):
    return api.app.state.portal_access.get_account(UUID(account_id))


def magic_path(api, ws: str, account_id: str) -> str:
    nonce = account(api, account_id).magic_nonce
    return tokens.magic_link("", ws, tokens.make_token(KEY, tokens.MAGIC, UUID(account_id), nonce))


def reset_path(api, ws: str, account_id: str) -> str:
    nonce = account(api, account_id).reset_nonce
    return tokens.reset_link("", ws, tokens.make_token(KEY, tokens.RESET, UUID(account_id), nonce))


def code_of(api, account_id: str) -> str:
    return tokens.sign_in_code(KEY, UUID(account_id), account(api, account_id).code_nonce)


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"porchlight_session={value}"}


def event_types(api, account_id: str) -> list[str]:
    access = api.app.state.portal_access
    return [type(e).__name__ for e in access.events.get(UUID(account_id))]


def unknown_email() -> str:
    return f"{unique('nobody')}@example.com"


__all__ = ["JSON", "KEY", "GOOD_PASSWORD", "csrf_token", "workspace", "invite", "claim_path", "active_client",
           "account", "magic_path", "reset_path", "code_of", "cookie", "event_types", "unknown_email", "ids"]
