"""Invite preview: exactly the email the notifier sends for the same input; sends and stores nothing."""

from __future__ import annotations

import re
from datetime import datetime

from services.invite_service.domain import ids
from services.invite_service.envelopes import origin_of_created, to_envelope
from services.messages import messages_for
from services.messages.rendering import format_expiry
from tests.helpers import unique
from tests.integration.conftest import auth
from tests.integration.test_notifier import LINK, notifier_settings, publish, running


def preview_url(ws: str) -> str:
    return f"/v1/workspaces/{ws}/invitations/preview"


def comparable(part: str, expires_at, time_zone: str = "UTC") -> str:
    """The part with what only sending can fix (the link, the expiry) replaced, and line endings
    unified (MIME transports lines as CRLF and ends every text part with one)."""
    part = part.replace("\r\n", "\n").rstrip("\n").replace(format_expiry(expires_at, time_zone), "EXPIRY")
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


async def _sent_for(api, invitation_id: str, position: int):
    """What the notifier is handed for the invitation's InviteSent: messages_for over its envelope."""
    store = api.app.state.portal_access
    [event] = [e for e in store.events.get(invitation_id) if type(e).__name__ == "InviteSent"]
    envelope = to_envelope(event, position, origin_of_created(event))
    return envelope, messages_for(envelope, secret_key=store.secret_key, public_base_url="http://portal.test")


async def test_preview_is_what_messages_for_renders_with_the_workspace_settings(api, staff_token, pro_workspace):
    """Reply-To, time zone, the portal's description and onboarding link: in the preview as in what is sent."""
    headers = auth(staff_token(pro_workspace))
    settings = {"reply_to": "hello@pride.example", "time_zone": "Europe/Lisbon",
                "portal_description": "Your trips & invoices in one place.", "portal_url": "https://app.pride.example"}
    changed = await api.put(f"/v1/workspaces/{pro_workspace}", headers=headers, json=settings)
    assert changed.status_code in (200, 201), changed.text
    row = {"email": f"{unique('cy')}@example.com", "name": "Cy <i>Ng</i>"}
    shown = (await api.post(preview_url(pro_workspace), headers=headers, json=row)).json()
    assert shown["reply_to"] == "hello@pride.example" and shown["sms"] is None
    assert "Lisbon time" in shown["text"] and "Your trips &amp; invoices in one place." in shown["html"]
    assert "https://app.pride.example" in shown["text"]

    invited = await api.post(f"/v1/workspaces/{pro_workspace}/invitations", headers=headers, json=row)
    assert invited.status_code == 201, invited.text
    envelope, [sent] = await _sent_for(api, invited.json()["invitation_id"], invited.json()["position"])
    expires = envelope.data.expires_at
    assert sent.email.reply_to == shown["reply_to"] and sent.email.subject == shown["subject"]
    assert sent.email.from_name == shown["from_name"] and sent.to == shown["recipient"]
    when = _when(shown["expires_at"])
    lisbon = {"time_zone": "Europe/Lisbon"}
    assert comparable(sent.email.html, expires, **lisbon) == comparable(shown["html"], when, **lisbon)
    assert comparable(sent.email.text, expires, **lisbon) == comparable(shown["text"], when, **lisbon)


async def test_preview_of_a_pending_account_is_the_resend_it_would_send(api, staff_token, pro_workspace):
    headers = auth(staff_token(pro_workspace))
    email = f"{unique('Di')}@Example.com"
    first = await api.post(f"/v1/workspaces/{pro_workspace}/invitations", headers=headers,
                           json={"email": email, "name": "Di Ro"})
    shown = (await api.post(preview_url(pro_workspace), headers=headers, json={"email": email.lower()})).json()
    assert shown["subject"] == "Reminder: Pride Travelers invited you to their client portal"
    assert shown["recipient"] == email  # where the last invitation went, as typed
    resent = await api.post(f"/v1/workspaces/{pro_workspace}/accounts/{first.json()['account_id']}/resend",
                            headers=headers)
    assert resent.status_code == 200, resent.text
    account = api.app.state.portal_access.get_account(first.json()["account_id"])
    envelope, [sent] = await _sent_for(api, str(account.invitation_id), resent.json().get("position", 1))
    assert sent.email.subject == shown["subject"] and sent.to == shown["recipient"]
    assert comparable(sent.email.text, envelope.data.expires_at) == comparable(shown["text"], _when(shown["expires_at"]))
    assert comparable(sent.email.html, envelope.data.expires_at) == comparable(shown["html"], _when(shown["expires_at"]))


async def test_preview_shows_the_sms_of_an_invite_by_text_message(api, staff_token, pro_workspace):
    row = {"email": f"{unique('ed')}@example.com", "phone": "+14155550123", "channels": ["email", "sms"]}
    shown = (await api.post(preview_url(pro_workspace), headers=auth(staff_token(pro_workspace)), json=row)).json()
    assert shown["channels"] == ["email", "sms"]
    assert shown["link"] in shown["sms"] and "Pride Travelers" in shown["sms"] and len(shown["sms"]) <= 160


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
