"""Rendering of the password reset email from its event: pure, no I/O."""

from __future__ import annotations

from datetime import datetime, timezone

from contracts.access import PasswordResetRequested, Sender
from services.messages.password_reset import render_password_reset

LINK = "http://127.0.0.1:8000/portal/pride-travelers/reset/abc.def"


def reset(name: str | None = "Ana <b>Traveler</b>", **sender: object) -> PasswordResetRequested:
    branding = {"workspace_name": "Pride Travelers", "sender_name": "Pride Travelers", "brand_color": "#C2185B",
                **sender}
    return PasswordResetRequested(
        nonce="r-1",
        expires_at=datetime(2030, 7, 15, 9, 30, tzinfo=timezone.utc),
        email="Ana@Example.com",
        name=name,
        sender=Sender(**branding),
    )


def test_it_is_branded_names_the_expiry_and_links_both_parts():
    rendered = render_password_reset(reset(), LINK)
    assert rendered.subject == "Set a new password for the Pride Travelers client portal"
    assert rendered.from_name == "Pride Travelers"
    for part in (rendered.html, rendered.text):
        assert LINK in part and "Monday 15 July 2030 at 09:30 UTC" in part
        assert "keeps working until you set a new one" in part
    assert "#C2185B" in rendered.html and "Porchlight" not in rendered.html + rendered.text


def test_the_name_is_text_in_html_and_optional():
    assert "Ana &lt;b&gt;Traveler&lt;/b&gt;" in render_password_reset(reset(), LINK).html
    assert render_password_reset(reset(name=None), LINK).text.startswith("Hello\n")


def test_unsafe_branding_is_not_put_in_the_markup():
    rendered = render_password_reset(reset(brand_color="red;background:url(x)", logo_url="javascript:alert(1)"), LINK)
    assert "javascript:" not in rendered.html and "url(x)" not in rendered.html
