"""Each sign-in method end to end on the real processes: the link or code comes out of the
email the notifier delivered to the SMTP server, never from the test's own derivation.

The team's notices (invitation accepted, locked out) are read from the SMTP server too."""

from __future__ import annotations

import re

import httpx
import pytest

from services.common.staff_auth import make_staff_token
from tests.conftest import STAFF_JWT_SECRET
from tests.e2e.test_invite_to_active import system  # noqa: F401 - the four processes, as a fixture
from tests.helpers import unique

pytestmark = pytest.mark.e2e
JSON = {"Accept": "application/json"}


def _link(mail, base: str, kind: str) -> str:
    found = re.findall(rf"{re.escape(base)}/portal/[\w-]+/{kind}/[\w.-]+", mail.part("plain"))
    assert found, mail.part("plain")
    return found[0]


async def _client_of(client, smtp_server, base: str, method: str, **settings) -> tuple[str, str, dict, str]:
    """A workspace signing in by `method`, and a client who claimed the emailed invite:
    (ws, email, staff headers, session cookie)."""
    ws = unique("ws")
    headers = {"Authorization": f"Bearer {make_staff_token(STAFF_JWT_SECRET, sub='owner-1', ws=ws, role='owner')}"}
    put = await client.put(f"/v1/workspaces/{ws}", headers=headers, json={
        "name": "Harbor Charters", "plan": "pro", "portal_enabled": True, "sign_in_method": method, **settings})
    assert put.status_code == 201, put.text
    email = f"{unique('ana')}@example.com"
    invited = await client.post(f"/v1/workspaces/{ws}/invitations", headers=headers,
                                json={"email": email, "name": "Ana Lima", "role": "charter_client"})
    assert invited.status_code == 201, invited.text
    [mail] = await smtp_server.wait_for(email, timeout=30)
    body = {"password": "copper kettle on the harbour wall"} if method == "password" else {}
    claimed = await client.post(_link(mail, base, "claim"), headers=JSON, json=body)
    assert claimed.status_code == 200, claimed.text
    return ws, email, headers, claimed.cookies["porchlight_session"]


async def test_magic_link_from_the_email(system, smtp_server):  # noqa: F811
    async with httpx.AsyncClient(base_url=system, timeout=10) as client:
        ws, email, _, _ = await _client_of(client, smtp_server, system, "magic_link")
        assert (await client.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})).status_code == 202
        mails = await smtp_server.wait_for(email, count=2, timeout=30)
        link = _link(mails[-1], system, "magic")
        assert (await client.get(link)).status_code == 200  # a scanner's GET spends nothing
        signed = await client.post(link, headers=JSON, json={})
        assert signed.status_code == 200, signed.text
        session = await client.get(f"/portal/{ws}/session", headers={"Cookie": "porchlight_session=" + signed.cookies["porchlight_session"]})
        assert session.status_code == 200 and session.json()["email"] == email
        assert (await client.post(link, headers=JSON, json={})).status_code == 410


async def test_code_from_the_email_and_the_team_told_of_a_lockout(system, smtp_server):  # noqa: F811
    team = f"{unique('team')}@example.com"
    async with httpx.AsyncClient(base_url=system, timeout=10) as client:
        ws, email, _, _ = await _client_of(client, smtp_server, system, "code", team_notify_email=team)
        assert (await client.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})).status_code == 202
        mails = await smtp_server.wait_for(email, count=2, timeout=30)
        code = re.search(r"^\s*(\d{6})\s*$", mails[-1].part("plain"), re.MULTILINE).group(1)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        answers = [await client.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": wrong})
                   for _ in range(5)]
        assert [a.status_code for a in answers] == [401] * 5
        locked = await client.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": code})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 800
        # The team first hears the invitation was accepted (the claim), then of the lockout.
        notices = await smtp_server.wait_for(team, count=2, timeout=30)
        assert any("locked out" in m.message["Subject"] for m in notices), [m.message["Subject"] for m in notices]


async def test_password_reset_from_the_email_ends_the_old_session(system, smtp_server):  # noqa: F811
    async with httpx.AsyncClient(base_url=system, timeout=10) as client:
        ws, email, _, old = await _client_of(client, smtp_server, system, "password")
        assert (await client.post(f"/portal/{ws}/password/forgot", headers=JSON, json={"email": email})).status_code == 202
        mails = await smtp_server.wait_for(email, count=2, timeout=30)
        link = _link(mails[-1], system, "password/reset")
        assert (await client.get(link)).status_code == 200
        done = await client.post(link, headers=JSON, json={"password": "marmalade lighthouse 1987"})
        assert done.status_code == 200, done.text
        assert (await client.get(f"/portal/{ws}/session", headers={"Cookie": f"porchlight_session={old}"})).status_code == 401
        signed = await client.post(f"/portal/{ws}/sign-in/password", headers=JSON,
                                   json={"email": email, "password": "marmalade lighthouse 1987"})
        assert signed.status_code == 200
