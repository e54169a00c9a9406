"""The password reset email: a PasswordResetRequested event and its reset link → templates/password_reset/."""

from __future__ import annotations

from contracts.access import PasswordResetRequested
from services.messages.branding import safe_branding
from services.messages.rendering import RenderedEmail, format_expiry, render_email

TEMPLATE = "password_reset"


def render_password_reset(reset: PasswordResetRequested, link: str) -> RenderedEmail:
    """`link` is derived by the caller (from the nonce, with a key this package never sees)."""
    sender = safe_branding(reset.sender)
    context = {
        "sender": sender,
        "name": (reset.name or "").strip(),
        "link": link,
        "expires": format_expiry(reset.expires_at),
    }
    return render_email(TEMPLATE, context, from_name=sender.display_name)
