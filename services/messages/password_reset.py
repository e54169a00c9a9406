"""The password reset email: a PasswordResetRequested event and its reset link → templates/password_reset/."""

from __future__ import annotations

from contracts.access import PasswordResetRequested
from services.messages.branding import safe_branding
from services.messages.rendering import RenderedEmail, format_expiry, render_cached
from services.messages.wording import BUTTONS

TEMPLATE = "password_reset"


def render_password_reset(reset: PasswordResetRequested, link: str) -> RenderedEmail:
    """`link` is derived by the caller (from the nonce, with a key this package never sees)."""
    sender = safe_branding(reset.sender)
    fixed = {"sender": sender, "button": BUTTONS["password_reset"]}
    values = {
        "name": (reset.name or "").strip(),
        "email": reset.email,
        "link": link,
        "expires": format_expiry(reset.expires_at, sender.time_zone),
    }
    return render_cached(TEMPLATE, fixed, values, from_name=sender.display_name, reply_to=sender.reply_to)
