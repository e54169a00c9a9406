"""Invite preview: exactly the email the notifier sends for the same input; sends and stores nothing."""

from __future__ import annotations

import re
from datetime import datetime

from services.invite_service.domain import ids
from services.invite_service.envelopes import origin_of_created, to_envelope
from services.messages.rendering import format_expiry
from tests.helpers import unique
from tests.integration.conftest import auth
from tests.integration.test_notifier import LINK, notifier_settings, publish, running


def preview_url(ws: str) -> str:
    return f"/v1/workspaces/{ws}/invitations/preview"


def comparable(part: str, expires_at) -> str:
    """The part with what only sending can fix (the link, the expiry) replaced, and line endings
    unified (MIME transports lines as CRLF and ends every text part with one)."""
    part = part.replace("\r\n", "\n").rstrip("\n").replace(format_expiry(expires_at), "EXPIRY")
    return LINK.sub("LINK", part)


async def test_preview_is_the_email_the_notifier_sends(api, staff_token, pro_workspace, smtp_server, base_env):
    headers = auth(staff_token(pro_workspace, role="dispatcher"))
    address = f"{unique('Ana.Lima')}@Example.COM"
    row = {"email": f"  {address} ", "name": "Ana <b>Lima</b>", "role": "charter_client"}
    preview = await api.post(preview_url(pro_workspace), headers=headers, json=row)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["kind"] == "invite" and shown["would_send"] is True and shown["account_status"] is None
    assert shown["recipient"] == address and shown["channels"] == ["email"] and shown["from_name"] == "Pride Travelers"
    assert LINK.fullmatch(shown["link"]) and shown["link"] in shown["html"] and shown["link"] in shown["text"]
    # Sends and stores nothing.
    store = api.app.state.portal_access
    assert store._existing_accounts([ids.account_id(pro_workspace, address.lower())]) == set()

    invited = await api.post(f"/v1/workspaces/{pro_workspace}/invitations", headers=headers, json=row)
    assert invited.status_code == 201
    [event] = [e for e in store.events.get(invited.json()["invitation_id"]) if type(e).__name__ == "InviteSent"]
    envelope = to_envelope(event, invited.json()["position"], origin_of_created(event))
    settings = notifier_settings(base_env, smtp_server.port)
    async with running(settings):
        await publish(settings.kafka_bootstrap_servers, settings.access_topic, envelope)
        [mail] = await smtp_server.wait_for(address)
    assert mail.rcpt_tos == [address]  # as typed, not lower-cased
    assert mail.message["Subject"] == shown["subject"]
    html = comparable(shown["html"], _when(shown["expires_at"]))
    assert "EXPIRY" in html and "LINK" in html and "Pride Travelers" in html
    assert comparable(mail.part("html"), event.expires_at) == html
    assert comparable(mail.part("plain"), event.expires_at) == comparable(shown["text"], _when(shown["expires_at"]))
    assert "&lt;b&gt;Lima&lt;/b&gt;" in shown["html"]


async def test_preview_of_an_existing_account_is_a_resend(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    email = f"{unique('bo')}@example.com"
    created = await api.post(f"/v1/workspaces/{pro_workspace}/invitations", headers=headers, json={"email": email})
    preview = await api.post(preview_url(pro_workspace), headers=headers, json={"email": email.upper()})
    assert preview.status_code == 200
    shown = preview.json()
    assert shown["kind"] == "resend" and shown["account_status"] == "pending" and shown["would_send"] is True
    assert shown["account_id"] == created.json()["account_id"] and "resend" in shown["what_happens"]
    assert api.app.state.portal_access.get_account(shown["account_id"]).version == 1


async def test_preview_link_is_never_valid(api, staff_token, pro_workspace):
    shown = (await api.post(preview_url(pro_workspace), headers=auth(staff_token(pro_workspace)), json={"email": "c@example.com"})).json()
    page = await api.get(re.sub(r"^https?://[^/]+", "", shown["link"]))
    assert page.status_code == 410


async def test_preview_refuses_what_an_invite_refuses(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    bad = await api.post(preview_url(pro_workspace), headers=headers, json={"email": "x@example.com", "role": "skipper"})
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_role"
    missing = await api.post(preview_url(pro_workspace), headers=headers, json={"name": "No Email"})
    assert missing.status_code == 422 and missing.json()["code"] == "email_required"
    viewer = await api.post(preview_url(pro_workspace), headers=auth(staff_token(pro_workspace, role="viewer")), json={"email": "x@example.com"})
    assert viewer.status_code == 403 and viewer.json()["code"] == "forbidden_role"



def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
