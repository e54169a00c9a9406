"""Rendering and building of the invitation email: pure, no I/O."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from contracts.access import InviteSent, Sender
from services.messages import DEFAULT_BRAND_COLOR, render_invite
from email import message_from_bytes, policy

from services.notifier.providers.base import Email, message_id_for, mime_bytes

LINK = "http://127.0.0.1:8000/portal/pride-travelers/claim/abc.def"


def invite(name: str = "Ana Traveler", **sender: object) -> InviteSent:
    branding = {
        "workspace_name": "Pride Travelers",
        "sender_name": "Pride Travelers",
        "logo_url": "https://cdn.example.com/pride.png",
        "brand_color": "#C2185B",
        **sender,
    }
    return InviteSent(
        workspace="pride-travelers",
        account_id=uuid.uuid4(),
        email="ana@example.com",
        name=name,
        nonce="n-1",
        expires_at=datetime(2030, 7, 15, 9, 30, tzinfo=timezone.utc),
        sender=Sender(**branding),
    )


def test_subject_names_the_sender_never_porchlight():
    rendered = render_invite(invite(), LINK)
    assert rendered.subject == "Pride Travelers invited you to their client portal"
    assert "Porchlight" not in rendered.subject + rendered.html + rendered.text


def test_html_is_branded_and_inlined():
    html = render_invite(invite(), LINK).html
    assert 'src="https://cdn.example.com/pride.png"' in html
    assert "background-color: #C2185B" in html
    assert f'href="{LINK}"' in html
    assert "Welcome, Ana Traveler!" in html
    assert "Monday 15 July 2030 at 09:30 UTC" in html
    assert "<style" not in html  # inlined: mail clients drop style blocks
    assert 'style="' in html


def test_text_part_has_the_link_and_expiry():
    text = render_invite(invite(), LINK).text
    assert LINK in text.split()
    assert "Welcome, Ana Traveler!" in text
    assert "Monday 15 July 2030 at 09:30 UTC" in text


def test_markup_in_a_name_is_shown_as_text():
    rendered = render_invite(invite(name="<script>x</script>"), LINK)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;x&lt;/script&gt;" in rendered.html
    assert "Welcome, <script>x</script>!" in rendered.text  # plain text is not HTML


def test_unsafe_branding_falls_back_to_safe_values():
    rendered = render_invite(invite(brand_color="red;background:url(x)", logo_url="javascript:alert(1)"), LINK)
    assert f"background-color: {DEFAULT_BRAND_COLOR}" in rendered.html
    assert "javascript:" not in rendered.html and "<img" not in rendered.html


def test_sender_name_cannot_inject_headers():
    rendered = render_invite(invite(sender_name="Pride\r\nBcc: victim@example.com"), LINK)
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert rendered.from_name == "Pride Bcc: victim@example.com"
    message = _sent(rendered, from_name=rendered.from_name, delivery_id=uuid.uuid4())
    assert message["Bcc"] is None and len(message["From"].addresses) == 1


def test_missing_branding_falls_back_to_the_default_colour_and_no_logo():
    rendered = render_invite(invite(brand_color=None, logo_url=None), LINK)
    assert f"background-color: {DEFAULT_BRAND_COLOR}" in rendered.html and "<img" not in rendered.html
    assert rendered.from_name == "Pride Travelers"


def test_message_is_multipart_from_the_sender_with_a_stable_id():
    delivery_id = uuid.uuid4()
    rendered = render_invite(invite(), LINK)
    message = _sent(rendered, from_name="Pride Travelers", delivery_id=delivery_id)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["From"] == "Pride Travelers <portal@pl.test>"
    assert message["Message-ID"] == message_id_for(delivery_id, "portal@pl.test")
    assert LINK in message.get_body(("plain",)).get_content()
    assert LINK in message.get_body(("html",)).get_content()


def test_an_invite_by_email_alone_greets_without_a_name():
    # Staff may invite with just an email; the relay then sends `"name": null`.
    data = invite().model_dump(mode="json") | {"name": None}
    rendered = render_invite(InviteSent.model_validate(data), LINK)
    assert "Welcome!" in rendered.text and "None" not in rendered.text and "None" not in rendered.html


def _sent(rendered, *, from_name: str, delivery_id: uuid.UUID):
    """The message as the SMTP and Gmail providers put it on the wire, parsed back."""
    email = Email(to="ana@example.com", from_address="portal@pl.test", from_name=from_name, reply_to=None,
                  subject=rendered.subject, html=rendered.html, text=rendered.text, delivery_id=delivery_id)
    return message_from_bytes(mime_bytes(email), policy=policy.default)
