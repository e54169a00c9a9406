"""Providers as the notifier routes them: a manual invite by a staff member who connected Gmail
goes out through Gmail, falls back to Postmark when Gmail refuses the token (and the delivery
record says so), and its SMS goes through Twilio. Every provider is a local stub that checks
requests as the provider documents them."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from contracts import Actor
from tests.helpers import poll_until, unique
from tests.integration.conftest import auth
from tests.integration.provider_stubs import gmail_stub, postmark_stub, twilio_stub
from tests.integration.test_notifier import invite_sent, notifier_settings, outcomes_for, publish, recording, running

pytestmark = pytest.mark.timeout(90)


def manual_invite(ws: str, staff_id: str, *, phone: str | None = None):
    event = invite_sent(ws, f"{unique('ana')}@example.com")
    data = event.data.model_copy(update={"inviter_staff_id": staff_id, "inviter_name": "Pat", "phone": phone,
                                         "channels": ["email", "sms"] if phone else ["email"]})
    return event.model_copy(update={"data": data, "actor": Actor(kind="staff", id=staff_id)})


async def test_gmail_then_its_fallback_to_postmark_and_sms_through_twilio(
    api, pro_workspace, staff_token, base_env, kafka_bootstrap, topic_names
):
    ws, staff_id, token = pro_workspace, "staff-pat", "ya29." + secrets.token_urlsafe(40)
    connected = await api.put(f"/v1/workspaces/{ws}/staff/{staff_id}/gmail", headers=auth(staff_token(ws, "dispatcher")),
                              json={"access_token": token, "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()})
    assert connected.status_code == 200, connected.text
    async with gmail_stub() as gmail, postmark_stub() as postmark, twilio_stub() as twilio, \
            recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes:
        settings = notifier_settings(
            base_env, 1, email_provider="postmark", postmark_api_url=postmark.base_url,
            postmark_server_token=postmark.server_token, gmail_api_url=gmail.base_url,
            twilio_api_url=twilio.base_url, twilio_account_sid=twilio.account_sid,
            twilio_auth_token=twilio.auth_token, twilio_from="+15005550006",
        )
        gmail.valid_tokens.add(token)
        through_gmail = manual_invite(ws, staff_id, phone="+14155550123")
        refused = manual_invite(ws, staff_id)
        async with running(settings):
            await publish(kafka_bootstrap, topic_names["access"], through_gmail)
            by_gmail = await poll_until(lambda: _async(len(outcomes_for(outcomes, through_gmail)) >= 2 and
                                                       outcomes_for(outcomes, through_gmail)), what="both channels")
            gmail.valid_tokens.clear()  # Google revoked it: Gmail answers 401
            await publish(kafka_bootstrap, topic_names["access"], refused)
            [fallen] = await poll_until(lambda: _async(outcomes_for(outcomes, refused)), what="the fallback")
    email, sms = sorted(by_gmail, key=lambda o: o["channel"])
    assert (email["status"], email["provider"], sms["status"], sms["provider"]) == ("sent", "gmail", "sent", "twilio")
    [mail] = gmail.accepted
    assert mail["To"] == through_gmail.data.email
    [text] = twilio.accepted
    assert text["To"] == "+14155550123" and f"/portal/{ws}/claim/" in text["Body"]
    assert (fallen["status"], fallen["provider"]) == ("sent", "postmark")
    assert "gmail" in fallen["error"] and "postmark" in fallen["error"]
    [posted] = postmark.accepted
    assert posted["To"] == refused.data.email


async def _async(value):
    return value
