"""SMS bodies: one GSM-7 segment where possible, with the link or code and the sender's name."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from contracts.access import InviteSent, Sender, SignInCodeIssued
from services.common import tokens
from services.messages import render_invite_sms, render_sign_in_code_sms
from services.messages.sms import is_gsm7, length, segments, to_gsm7

AT = datetime(2030, 7, 15, 9, 30, tzinfo=timezone.utc)
TOKEN = tokens.make_token(b"k" * 32, tokens.CLAIM, uuid.uuid4(), "n")  # a real token's length


def link(base: str = "https://portal.example.com", ws: str = "pride-travelers") -> str:
    return tokens.claim_link(base, ws, TOKEN)


def invite(sender_name: str = "Pride Travelers", inviter: str | None = None, method: str = "manual") -> InviteSent:
    return InviteSent(workspace="pride-travelers", account_id=uuid.uuid4(), email="a@example.com", nonce="n",
                      expires_at=AT, channels=["sms"], phone="+14155550123", method=method, inviter_name=inviter,
                      sender=Sender(workspace_name="Pride Travelers", sender_name=sender_name))


def test_segments_as_the_network_counts_them():
    assert segments("a" * 160) == 1 and segments("a" * 161) == 2 and segments("a" * 306) == 2
    assert length("{}") == 4 and segments("€" * 80) == 1 and segments("€" * 81) == 2  # extension table: two each
    assert not is_gsm7("🙂") and segments("a" * 69 + "🙂") == 2 and segments("é" * 160) == 1


def test_the_richest_wording_that_fits_one_segment_is_chosen():
    tiny = "https://p.example/c/abc"
    body = render_invite_sms(invite(inviter="Pat"), tiny)
    assert body == f"Pat at Pride Travelers invited you to their client portal. Accept invitation: {tiny}"
    short = link("https://p.example", "pt")
    body = render_invite_sms(invite(inviter="Pat"), short)
    assert body == f"Pat at Pride Travelers invited you to their client portal: {short}" and segments(body) == 1
    longer = link("https://p.example")  # the inviter's name no longer fits; the sender's always stays
    body = render_invite_sms(invite(inviter="Pat"), longer)
    assert body == f"Pride Travelers invited you to their client portal: {longer}" and segments(body) == 1


@pytest.mark.parametrize("base", ["https://portal.example.com", "https://clients.pride-travelers-agency.example.com"])
@pytest.mark.parametrize("sender_name", ["Pride Travelers", "Pride Travelers & Charter Holidays", "Pride Travelers & Charter Holidays International"])
def test_an_invite_fits_one_segment_with_the_link_and_the_sender(base, sender_name):
    body = render_invite_sms(invite(sender_name=sender_name, inviter="Pat"), link(base))
    assert link(base) in body and sender_name in body and is_gsm7(body)
    if length(f"{sender_name}: {link(base)}") <= 160:  # possible: then it is one segment
        assert length(body) <= 160 and segments(body) == 1, (len(body), body)
    else:
        assert body == f"{sender_name}: {link(base)}"


def test_when_nothing_fits_the_shortest_is_sent():
    long_name = "The Very Long Name Of A Travel Agency That Never Ends Limited"
    body = render_invite_sms(invite(sender_name=long_name), link("https://" + "x" * 60 + ".example"))
    assert body == f"{long_name}: {link('https://' + 'x' * 60 + '.example')}" and segments(body) == 2


def test_a_name_outside_gsm7_is_folded_so_it_stays_one_segment():
    body = render_invite_sms(invite(sender_name="Zoë’s Voyages"), link())
    assert "Zoe's Voyages" in body and is_gsm7(body) and segments(body) == 1
    assert to_gsm7("Ñandú €5 «hi»") == "Ñandu €5 «hi»"  # what cannot be folded is kept


def test_a_code_sms_has_the_code_first_and_the_sender():
    issued = SignInCodeIssued(nonce="n", expires_at=AT, email="a@example.com", phone="+351912345678",
                              channels=["sms"], sender=Sender(workspace_name="Pride", sender_name="Pride Travelers"))
    body = render_sign_in_code_sms(issued, "042917", issued_at=AT - timedelta(minutes=10))
    assert body == "042917 is your Pride Travelers sign-in code. It expires in 10 minutes. Never share it."
    assert segments(body) == 1
    assert "expires at 09:30 UTC" in render_sign_in_code_sms(issued, "042917")
