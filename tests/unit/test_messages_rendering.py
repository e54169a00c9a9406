"""Every message type rendered: HTML and text, branding, escaping, time zones, wording.

Also that the cached rendering (a skeleton inlined once per workspace and message shape,
filled per recipient) is the same email as rendering from scratch.
"""

from __future__ import annotations

import html as htmllib
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from contracts.access import (
    InviteSent,
    MagicLinkRequested,
    PasswordResetRequested,
    Sender,
    SignInCodeIssued,
)
from services.messages import (
    BUTTONS,
    render_invite,
    render_magic_link,
    render_password_reset,
    render_sign_in_code,
)
from services.messages import rendering, team
from services.messages.branding import safe_branding
from services.messages.rendering import format_duration, format_expiry, render_cached, render_uncached

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2030, 7, 15, 9, 30, tzinfo=timezone.utc)
LINK = "https://portal.example.com/portal/pride-travelers/claim/abc.def"
BASE_SENDER = {"workspace_name": "Pride Travelers", "sender_name": "Pride Travelers", "brand_color": "#C2185B"}


def sender(**over) -> Sender:
    return Sender(**(BASE_SENDER | over))


def invite(name: str | None = "Ana Lima", *, method="manual", inviter: str | None = None, **sender_over) -> InviteSent:
    return InviteSent(workspace="pride-travelers", account_id=uuid.uuid4(), email="ana@example.com", name=name,
                      nonce="n", expires_at=AT, method=method, inviter_name=inviter, sender=sender(**sender_over))


def reset(name: str | None = "Ana Lima", **sender_over) -> PasswordResetRequested:
    return PasswordResetRequested(nonce="n", expires_at=AT, email="ana@example.com", name=name,
                                  sender=sender(**sender_over))


def magic(name: str | None = "Ana Lima", **sender_over) -> MagicLinkRequested:
    return MagicLinkRequested(nonce="n", expires_at=AT, email="ana@example.com", name=name,
                              sender=sender(**sender_over))


def code(name: str | None = "Ana Lima", **sender_over) -> SignInCodeIssued:
    return SignInCodeIssued(nonce="n", expires_at=AT, email="ana@example.com", name=name,
                            sender=sender(**sender_over))


def every_client_message(name: str | None = "Ana Lima", **sender_over):
    yield "invite", render_invite(invite(name, **sender_over), LINK)
    yield "password_reset", render_password_reset(reset(name, **sender_over), LINK)
    yield "magic_link", render_magic_link(magic(name, **sender_over), LINK, issued_at=AT - timedelta(minutes=15))
    yield "sign_in_code", render_sign_in_code(code(name, **sender_over), "123456", issued_at=AT - timedelta(minutes=10))


def every_team_message(name: str | None = "Ana Lima", **sender_over):
    brand = safe_branding(sender(**sender_over))
    where = {"team_address": "team@pride.example"}
    yield "team_invitation_accepted", team.render_invitation_accepted(brand, email="ana@example.com", name=name,
                                                                      at=AT, **where)
    yield "team_locked_out", team.render_locked_out(brand, email="ana@example.com", name=name, method="code",
                                                    until=AT, ip="203.0.113.9", **where)
    yield "team_auto_invite_sent", team.render_auto_invite_sent(brand, email="ana@example.com", name=name,
                                                                expires_at=AT, reason="first invoice share", **where)
    yield "team_delivery_failed", team.render_delivery_failed(brand, message="invite", channel="email",
                                                              recipient="ana@example.com", name=name, reason="550",
                                                              abandoned=True, attempts=6, **where)


def every_message(name: str | None = "Ana Lima", **sender_over):
    yield from every_client_message(name, **sender_over)
    yield from every_team_message(name, **sender_over)


def test_every_message_is_html_with_inlined_css_and_a_text_part():
    for message, rendered in every_message():
        assert rendered.subject and "\n" not in rendered.subject, message
        assert "<style" not in rendered.html and 'style="' in rendered.html, message
        assert rendered.text.strip() and "<" not in rendered.text, message
        assert "None" not in rendered.text + rendered.html, message


def test_markup_in_a_name_is_text_in_every_message():
    for message, rendered in every_message(name='Ana <b onmouseover="x()">Lima</b>'):
        assert "<b " not in rendered.html, message
        assert "&lt;b onmouseover=" in rendered.html, message
        assert '<b onmouseover="x()">Lima</b>' in rendered.text, message  # plain text is not HTML


def test_no_message_names_our_product():
    for message, rendered in every_message():
        everything = rendered.subject + rendered.html + rendered.text + rendered.from_name
        assert "porchlight" not in everything.lower(), message


def test_the_header_is_the_logo_or_else_the_workspace_name():
    for message, rendered in every_client_message(logo_url="https://cdn.example.com/pride.png"):
        assert '<img class="logo" alt="Pride Travelers" src="https://cdn.example.com/pride.png"' in rendered.html
    for message, rendered in every_client_message(logo_url=None, workspace_name="Pride & Co"):
        assert "<img" not in rendered.html
        assert re.search(r'<p class="wordmark" style="[^"]*color: #C2185B[^"]*">Pride &amp; Co</p>', rendered.html)


def test_reply_to_is_the_workspace_contact_address_and_the_footer_says_so():
    for message, rendered in every_client_message(reply_to="hello@pride.example"):
        assert rendered.reply_to == "hello@pride.example", message
        assert "Reply to this email to reach Pride Travelers" in rendered.text
    for message, rendered in every_team_message(reply_to="hello@pride.example"):
        assert rendered.reply_to is None, message  # the contact address is the team itself
        assert "Reply to this email" not in rendered.html + rendered.text
    for message, rendered in every_client_message(reply_to="x@y.z, victim@example.com"):
        assert rendered.reply_to is None  # one plain address or none: a header never gains recipients
    for message, rendered in every_message():
        assert rendered.reply_to is None and "Reply to this email" not in rendered.text


def test_the_footer_says_who_sent_it_and_why():
    rendered = render_invite(invite(), LINK)
    why = "Pride Travelers sent this email to ana@example.com because they invited you to their client portal."
    assert why in rendered.text and why in rendered.html
    for message, rendered in every_team_message():
        assert "This notice went to team@pride.example" in rendered.text, message
        assert rendered.from_name == "Pride Travelers client portal"


def test_the_invite_names_the_inviting_person_and_the_workspace():
    rendered = render_invite(invite(inviter="Pat"), LINK)
    assert rendered.subject == "Pat at Pride Travelers invited you to their client portal"
    assert "Pat at Pride Travelers invited you to their client portal." in rendered.text
    other = render_invite(invite(inviter="Pat", sender_name="Pride Support"), LINK)  # the brand differs
    assert "Pat at Pride Support invited you to the Pride Travelers client portal." in other.text
    assert rendered.from_name == "Pride Travelers"
    auto = render_invite(invite(method="auto_on_share", inviter="Pat"), LINK)
    assert auto.subject == "Pride Travelers invited you to their client portal"  # the workspace, not a person
    assert render_invite(invite(), LINK).subject == "Pride Travelers invited you to their client portal"


def test_a_resend_and_a_reactivation_say_what_they_are():
    resend = render_invite(invite(method="resend", inviter="Pat"), LINK)
    assert resend.subject == "Reminder: Pat at Pride Travelers invited you to their client portal"
    assert "any earlier one no longer works" in resend.text and "any earlier one no longer works" in resend.html
    back = render_invite(invite(method="reactivate"), LINK)
    assert back.subject == "Pride Travelers restored your access to their client portal"
    assert "Pride Travelers restored your access to their client portal." in back.text


def test_the_portal_description_and_the_onboarding_link_when_the_workspace_has_them():
    rendered = render_invite(invite(portal_description="Your trips & invoices.",
                                    portal_url="https://app.pride.example/portal"), LINK)
    assert "Your trips & invoices." in rendered.text and "Your trips &amp; invoices." in rendered.html
    assert "https://app.pride.example/portal" in rendered.text
    assert 'href="https://app.pride.example/portal"' in rendered.html
    bare = render_invite(invite(portal_url="javascript:alert(1)"), LINK)
    assert "javascript:" not in bare.html + bare.text and "the portal is at" not in bare.text


def test_the_button_says_what_the_page_it_opens_says():
    claim_page = (ROOT / "services/invite_service/templates/claim.html").read_text()
    assert f'<button type="submit">{BUTTONS["invite"]}</button>' in claim_page
    for message, rendered in every_client_message():
        if message in BUTTONS:
            assert f">{BUTTONS[message]}</a>" in rendered.html, message
            assert f"{BUTTONS[message]}:\n\n{LINK}" in rendered.text, message


def test_dates_are_in_the_workspace_time_zone():
    assert format_expiry(AT) == "Monday 15 July 2030 at 09:30 UTC"
    assert format_expiry(AT, "Europe/Lisbon") == "Monday 15 July 2030 at 10:30 Lisbon time"
    assert format_expiry(AT, "America/New_York") == "Monday 15 July 2030 at 05:30 New York time"
    assert format_expiry(AT, "Not/AZone") == "Monday 15 July 2030 at 09:30 UTC"  # still sent, in UTC
    assert format_expiry(AT.replace(tzinfo=None)) == "Monday 15 July 2030 at 09:30 UTC"
    rendered = render_invite(invite(time_zone="Asia/Tokyo"), LINK)
    assert "expires on Monday 15 July 2030 at 18:30 Tokyo time" in rendered.text
    assert "expires in 15 minutes, at 09:30 UTC" in dict(every_client_message())["magic_link"].text
    assert "expires in 10 minutes, at 09:30 UTC" in dict(every_client_message())["sign_in_code"].text


def test_durations_in_words():
    assert [format_duration(s) for s in (30, 600, 3600, 5400, 86400, 7 * 86400)] == [
        "1 minute", "10 minutes", "60 minutes", "2 hours", "24 hours", "7 days"]


def test_a_magic_link_without_its_issue_time_gives_the_time_only():
    assert "expires at 09:30 UTC" in render_magic_link(magic(), LINK).text


@pytest.mark.parametrize("name", ["Ana Lima", None, ""])
def test_the_cached_rendering_is_the_email_rendered_from_scratch(name):
    fixed = {"sender": safe_branding(sender(logo_url="https://cdn.example.com/p.png", reply_to="a@b.example")),
             "kind": "invite", "button": "Accept invitation"}
    values = {"name": name, "inviter": "Pat", "email": "ana@example.com", "link": LINK, "expires": "soon"}
    kw = {"from_name": "Pride Travelers", "reply_to": "a@b.example"}
    assert render_cached("invite", fixed, values, **kw) == render_uncached("invite", fixed, values, **kw)


def test_the_cached_rendering_escapes_like_rendering_from_scratch():
    fixed = {"sender": safe_branding(sender()), "kind": "resend", "button": "Accept invitation"}
    values = {"name": "<i>Ana</i> & \"Bo\" O'Neil", "inviter": "P<a>t", "email": "a&b@example.com",
              "link": LINK + "?a=1&b='2'", "expires": "x < y"}
    cached = render_cached("invite", fixed, values, from_name="x")
    scratch = render_uncached("invite", fixed, values, from_name="x")
    assert cached.subject == scratch.subject and cached.text == scratch.text
    # Entities may be spelt differently (&#39; or '), the document is the same.
    assert htmllib.unescape(cached.html) == htmllib.unescape(scratch.html)
    assert "<i>" not in cached.html and "<a>" not in cached.html


def test_a_value_that_looks_like_a_placeholder_is_only_text():
    fake = rendering._placeholder("link")
    rendered = render_invite(invite(name=fake), LINK)
    assert f"Welcome, {fake}!" in rendered.text


def test_one_skeleton_serves_every_recipient_of_a_workspace():
    rendering._skeletons.cache_clear()
    for i in range(50):
        render_invite(invite(name=f"Client {i}"), LINK + str(i))
    info = rendering._skeletons.cache_info()
    assert info.misses == 1 and info.hits == 49


@pytest.mark.parametrize("name", ["Ana Lima", None, "Ana <b>&</b> \"Lima\""])
def test_every_message_is_the_same_cached_or_from_scratch(monkeypatch, name):
    cached = list(every_message(name, reply_to="hello@pride.example", logo_url=None))
    from services.messages import invite as invite_module, password_reset, sign_in
    for module in (invite_module, password_reset, sign_in, team):
        monkeypatch.setattr(module, "render_cached", render_uncached)
    scratch = list(every_message(name, reply_to="hello@pride.example", logo_url=None))
    assert [m for m, _ in cached] == [m for m, _ in scratch]
    for (message, a), (_, b) in zip(cached, scratch):
        assert (a.subject, a.text, a.from_name, a.reply_to) == (b.subject, b.text, b.from_name, b.reply_to), message
        assert htmllib.unescape(a.html) == htmllib.unescape(b.html), message
        if name is None or name == "Ana Lima":
            assert a.html == b.html, message  # nothing to escape: byte for byte


def test_braces_in_names_are_only_text():
    # The skeleton is filled by str.format_map: braces in the template's own text (a
    # workspace name) and in values (a client's name) must come out as typed.
    rendered = render_invite(invite(name="{link} {0} }{", workspace_name="Pride {email}", sender_name="Pride {email}"),
                             LINK)
    assert "Welcome, {link} {0} }{!" in rendered.text and "Pride {email}" in rendered.text
    assert rendered.subject == "Pride {email} invited you to their client portal"
