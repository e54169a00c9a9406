"""messages_for: which messages an access event causes, to whom, on which channel, rendered.

The seam the notifier uses: pure, no I/O. Links and codes are derived from the nonce with
the key, exactly as the API checks them (services/common/tokens.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from contracts.access import (
    Actor,
    ENVELOPES,
    AccessEventV1,
    event_id_for,
)
from services.common import tokens
from services.messages import OutgoingMessage, messages_for, team_delivery_failed
from services.messages.sms import is_gsm7, segments

KEY = b"k" * 32
BASE = "https://portal.example.com"
WS = "pride-travelers"
AT = datetime(2030, 7, 15, 9, 30, tzinfo=timezone.utc)
ACCOUNT = uuid.uuid4()
INVITATION = uuid.uuid4()
SENDER = {
    "workspace_name": "Pride Travelers", "sender_name": "Pride Travelers", "brand_color": "#C2185B",
    "logo_url": "https://cdn.example.com/pride.png", "reply_to": "hello@pride.example",
    "team_notify_email": "team@pride.example", "time_zone": "Europe/Lisbon",
    "portal_description": "Your trips, documents and invoices in one place.",
    "portal_url": "https://app.pride.example/portal",
}


def envelope(type_: str, data: dict, *, aggregate_id=ACCOUNT, actor: Actor | None = None, typed: bool = True):
    cls = ENVELOPES[type_] if typed else AccessEventV1
    return cls.model_validate({
        "event_id": event_id_for(aggregate_id, 1), "type": type_, "workspace": WS, "account_id": ACCOUNT,
        "aggregate_id": aggregate_id, "aggregate_version": 1, "position": 7, "occurred_at": AT,
        "actor": (actor or Actor(kind="staff", id="staff-42")).model_dump(), "data": data,
    })


def invite_sent(**over) -> AccessEventV1:
    data = {"workspace": WS, "account_id": str(ACCOUNT), "email": "Ana@Example.com", "name": "Ana Lima",
            "nonce": "n-1", "expires_at": (AT + timedelta(days=7)).isoformat(), "channels": ["email"],
            "method": "manual", "sender": SENDER, "inviter_name": "Pat", "inviter_staff_id": "staff-7"}
    actor = over.pop("actor", None)
    typed = over.pop("typed", True)
    return envelope("InviteSent", data | over, aggregate_id=INVITATION, actor=actor, typed=typed)


def send(event: AccessEventV1, **kw) -> list[OutgoingMessage]:
    return messages_for(event, secret_key=KEY, public_base_url=BASE, **kw)


def claim_link() -> str:
    return tokens.claim_link(BASE, WS, tokens.make_token(KEY, tokens.CLAIM, INVITATION, "n-1"))


def test_an_invite_is_one_email_with_the_claim_link_from_the_inviting_staff_member():
    [out] = send(invite_sent())
    assert (out.message, out.channel, out.audience, out.slot) == ("invite", "email", "client", "client:email")
    assert out.to == "Ana@Example.com"  # as typed
    assert out.staff_id == "staff-7" and out.sms is None and out.expires_at == AT + timedelta(days=7)
    assert out.email.subject == "Pat at Pride Travelers invited you to their client portal"
    assert out.email.reply_to == "hello@pride.example" and out.email.from_name == "Pride Travelers"
    assert claim_link() in out.email.text and f'href="{claim_link()}"' in out.email.html


def test_the_generic_envelope_works_like_the_typed_one():
    assert send(invite_sent(typed=False)) == send(invite_sent())


def test_an_invite_on_both_channels_is_an_email_and_one_sms_segment():
    email, sms = send(invite_sent(channels=["email", "sms"], phone="+14155550123"))
    assert (sms.message, sms.channel, sms.to, sms.slot, sms.email) == ("invite", "sms", "+14155550123", "client:sms", None)
    assert claim_link() in sms.sms and "Pride Travelers" in sms.sms
    assert is_gsm7(sms.sms) and segments(sms.sms) == 1 and len(sms.sms) <= 160
    assert sms.staff_id == "staff-7" and sms.expires_at == email.expires_at


def test_an_sms_invite_without_a_phone_sends_only_what_it_can():
    assert [o.channel for o in send(invite_sent(channels=["email", "sms"]))] == ["email"]


def test_an_auto_invite_names_the_workspace_goes_out_as_no_one_and_tells_the_team():
    system = Actor(kind="system", reason="first invoice share")
    client, notice = send(invite_sent(method="auto_on_share", inviter_name=None, inviter_staff_id=None, actor=system))
    assert client.email.subject == "Pride Travelers invited you to their client portal" and client.staff_id is None
    assert (notice.message, notice.audience, notice.to, notice.slot) == (
        "team_auto_invite_sent", "team", "team@pride.example", "team:email")
    assert notice.expires_at is None and "first invoice share" in notice.email.text
    assert "Ana Lima (Ana@Example.com)" in notice.email.text and claim_link() not in notice.email.text


def test_an_auto_invite_without_a_team_address_tells_no_one():
    sender = SENDER | {"team_notify_email": None}
    assert [o.message for o in send(invite_sent(method="auto_on_share", sender=sender))] == ["invite"]


def test_a_resend_by_staff_goes_out_as_that_staff_member():
    [out] = send(invite_sent(method="resend", inviter_name=None, inviter_staff_id=None))
    assert out.staff_id == "staff-42"
    assert out.email.subject == "Reminder: Pride Travelers invited you to their client portal"
    assert "any earlier one no longer works" in out.email.text


def test_a_password_reset_is_the_reset_link_over_the_account():
    data = {"nonce": "r-1", "expires_at": (AT + timedelta(hours=1)).isoformat(), "email": "Ana@Example.com",
            "name": "Ana", "sender": SENDER}
    [out] = send(envelope("PasswordResetRequested", data))
    link = tokens.reset_link(BASE, WS, tokens.make_token(KEY, tokens.RESET, ACCOUNT, "r-1"))
    assert (out.message, out.channel, out.to, out.slot, out.staff_id) == (
        "password_reset", "email", "Ana@Example.com", "client:email", None)
    assert link in out.email.text and out.email.reply_to == "hello@pride.example"


def test_a_magic_link_says_how_long_it_lasts_in_the_workspace_time_zone():
    data = {"nonce": "m-1", "expires_at": (AT + timedelta(minutes=15)).isoformat(), "email": "ana@example.com",
            "sender": SENDER}
    [out] = send(envelope("MagicLinkRequested", data, actor=Actor(kind="client", id=str(ACCOUNT))))
    link = tokens.magic_link(BASE, WS, tokens.make_token(KEY, tokens.MAGIC, ACCOUNT, "m-1"))
    assert out.message == "magic_link" and link in out.email.text and out.expires_at == AT + timedelta(minutes=15)
    assert "expires in 15 minutes, at 10:45 Lisbon time" in out.email.text  # 09:45 UTC is 10:45 in July


def test_a_sign_in_code_goes_by_email_and_by_sms_when_a_phone_is_on_it():
    data = {"nonce": "c-1", "expires_at": (AT + timedelta(minutes=10)).isoformat(), "email": "ana@example.com",
            "phone": "+351912345678", "channels": ["email", "sms"], "sender": SENDER}
    email, sms = send(envelope("SignInCodeIssued", data))
    code = tokens.sign_in_code(KEY, ACCOUNT, "c-1")
    assert (email.slot, sms.slot, sms.to) == ("client:email", "client:sms", "+351912345678")
    assert code in email.email.subject and code in email.email.text and code in email.email.html
    assert sms.sms.startswith(code) and "Pride Travelers" in sms.sms and segments(sms.sms) == 1


def test_a_code_asked_for_by_sms_only_is_not_emailed():
    data = {"nonce": "c-1", "expires_at": AT.isoformat(), "email": "a@example.com", "phone": "+351912345678",
            "channels": ["sms"], "sender": SENDER}
    assert [o.channel for o in send(envelope("SignInCodeIssued", data))] == ["sms"]


def test_an_accepted_invitation_tells_the_team_when_the_caller_knows_its_address():
    data = {"invitation_id": str(INVITATION), "email": "ana@example.com", "name": "Ana Lima"}
    event = envelope("AccountActivated", data, actor=Actor(kind="client", id=str(ACCOUNT)))
    assert send(event) == []
    [out] = send(event, team_notify_email="team@pride.example")
    assert (out.message, out.audience, out.to, out.slot) == (
        "team_invitation_accepted", "team", "team@pride.example", "team:email")
    assert "Ana Lima (ana@example.com) accepted the invitation" in out.email.text


def test_an_accepted_invitation_names_the_workspace_the_claim_recorded():
    data = {"invitation_id": str(INVITATION), "email": "ana@example.com", "name": "Ana Lima",
            "workspace_name": "Pride <Travelers>"}
    event = envelope("AccountActivated", data, actor=Actor(kind="client", id=str(ACCOUNT)))
    [out] = send(event, team_notify_email="team@pride.example")
    assert "Pride <Travelers> client portal" in out.email.subject
    assert "Pride &lt;Travelers&gt;" in out.email.html and "Pride <Travelers>" not in out.email.html


def test_a_lockout_tells_the_team_from_the_sender_on_the_event():
    data = {"at": AT.isoformat(), "until": (AT + timedelta(minutes=15)).isoformat(), "method": "code",
            "email": "ana@example.com", "ip": "203.0.113.9", "sender": SENDER}
    [out] = send(envelope("VerificationLockedOut", data, actor=Actor(kind="client", id=str(ACCOUNT))))
    assert (out.message, out.to, out.slot) == ("team_locked_out", "team@pride.example", "team:email")
    assert "203.0.113.9" in out.email.text and "10:45 Lisbon time" in out.email.text


@pytest.mark.parametrize("type_", ["TokenClaimed", "InviteResent", "AccessDisabled", "SignedIn", "SomethingNew"])
def test_other_events_send_nothing(type_):
    assert send(envelope(type_, {}, typed=False)) == []


def test_slots_are_unique_among_one_events_messages():
    outs = send(invite_sent(channels=["email", "sms"], phone="+14155550123", method="auto_on_share"))
    assert len({o.slot for o in outs}) == len(outs) == 3


def test_a_failed_delivery_is_a_notice_to_the_team_with_its_own_slot():
    [failed] = send(invite_sent())
    notice = team_delivery_failed(failed=failed, team_notify_email="team@pride.example", reason="550 no such user",
                                  abandoned=False, attempts=1, sender=invite_sent().data.sender, name="Ana Lima")
    assert (notice.message, notice.audience, notice.slot) == ("team_delivery_failed", "team", "team:failed:client:email")
    assert "Ana@Example.com" in notice.email.subject and "550 no such user" in notice.email.text
    abandoned = team_delivery_failed(message="invite", channel="sms", recipient="+14155550123", slot="client:sms",
                                     team_notify_email="team@pride.example", reason="timeout", abandoned=True,
                                     attempts=6, workspace=WS)
    assert "after 6 attempts" in abandoned.email.text and "text message" in abandoned.email.subject
    assert abandoned.slot == "team:failed:client:sms"


def test_no_message_names_the_product():
    events = [invite_sent(channels=["email", "sms"], phone="+14155550123", method="auto_on_share")]
    for out in (o for e in events for o in send(e)):
        body = out.sms or out.email.subject + out.email.html + out.email.text + out.email.from_name
        assert "porchlight" not in body.lower()
