"""The whole path on the real processes: HTTP → event store → relay → Kafka → notifier →
SMTP server → claim link → projector → status list reads `active`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from deploy import embedded
from services.common.staff_auth import make_staff_token
from tests.conftest import STAFF_JWT_SECRET
from tests.helpers import poll_until, unique

pytestmark = pytest.mark.e2e
SERVICES = ("api", "relay", "notifier", "projector")


@pytest.fixture
async def system(base_env, smtp_server, pg_pool, tmp_path) -> Iterator[str]:
    """The four production processes, started with `porchlight <service>` as a deployment would."""
    port = embedded.free_port()
    relay_name = unique("relay")
    # Start the relay at the head of the shared test database: this test's events are what it should send.
    await pg_pool.execute(
        "INSERT INTO relay_positions (relay, position) SELECT $1, coalesce(max(notification_id), 0) FROM porchlight_events",
        relay_name,
    )
    env = {
        **os.environ,
        **base_env,
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_server.port),
        "RELAY_NAME": relay_name,
        "NOTIFIER_GROUP_ID": unique("notifier"),
        "PROJECTOR_GROUP_ID": unique("projector"),
        "LOG_FORMAT": "json",
    }
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in SERVICES}
    procs = [
        subprocess.Popen([sys.executable, "-m", "deploy.cli", name], env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        for name in SERVICES
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            async def ready():
                for proc in procs:
                    assert proc.poll() is None, f"a service exited: {_tail(tmp_path)}"
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await poll_until(ready, timeout=60, what="/readyz to report every process running")
        yield base
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for f in logs.values():
            f.close()
        _assert_no_secret_logged(tmp_path, smtp_server)


def _tail(tmp_path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in tmp_path.glob("*.log"))


def _assert_no_secret_logged(tmp_path, smtp_server) -> None:
    tokens = set()
    for mail in smtp_server.recorder.received:
        tokens |= set(re.findall(r"/claim/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", mail.part("plain")))
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    for token in tokens:
        assert token not in logs and token.split(".")[1] not in logs


async def test_invite_email_claim_active(system, smtp_server):
    ws = unique("ws")
    headers = {"Authorization": f"Bearer {make_staff_token(STAFF_JWT_SECRET, sub='owner-1', ws=ws, role='owner')}"}
    email = f"{unique('traveler')}@example.com"
    async with httpx.AsyncClient(base_url=system, timeout=10) as client:
        put = await client.put(f"/v1/workspaces/{ws}", headers=headers, json={
            "name": "Pride Travelers", "plan": "pro", "portal_enabled": True,
            "branding": {"sender_name": "Pride Travelers", "brand_color": "#0B7A75"},
        })
        assert put.status_code == 201, put.text
        invite = await client.post(f"/v1/workspaces/{ws}/invitations", headers=headers,
                                   json={"email": email, "name": "Tess Traveler", "role": "charter_client"})
        assert invite.status_code == 201, invite.text
        account_id = invite.json()["account_id"]

        [mail] = await smtp_server.wait_for(email, timeout=30)
        assert "Pride Travelers" in mail.message["Subject"] and "Pride Travelers" in mail.message["From"]
        links = re.findall(rf"{re.escape(system)}/portal/{ws}/claim/\S+?(?=[\s\"<]|$)", mail.part("plain"))
        assert links, mail.part("plain")
        link = links[0]
        assert link in mail.part("html")

        async def status():
            response = await client.get(f"/v1/workspaces/{ws}/accounts/{account_id}", headers=headers)
            return response.json()["status"] if response.status_code == 200 else None

        assert await poll_until(status, what="the account in the status list") == "pending"

        page = await client.get(link)
        assert page.status_code == 200 and "Accept invitation" in page.text
        # The page's form carries a CSRF token that pairs with the cookie the page set.
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        claimed = await client.post(link, data={"csrf_token": csrf})
        assert claimed.status_code == 303 and "porchlight_session" in claimed.headers["set-cookie"]

        await poll_until(lambda: _is(status, "active"), what="the account to read active")
        listed = await client.get(f"/v1/workspaces/{ws}/accounts", headers=headers, params={"status": "active"})
        assert [item["email"] for item in listed.json()["items"]] == [email]

        reused = await client.post(link, headers={"Accept": "application/json"})
        assert reused.status_code == 410 and reused.json()["detail"] == "That link is no longer valid."
    assert len(smtp_server.recorder.to(email)) == 1


async def _is(probe, expected):
    return (await probe()) == expected
