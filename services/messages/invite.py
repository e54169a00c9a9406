"""The invitation email: an InviteSent event and its claim link → templates/invite/."""

from __future__ import annotations

from contracts.access import InviteSent
from services.messages.branding import safe_branding
from services.messages.rendering import RenderedEmail, format_expiry, render_email

TEMPLATE = "invite"


def render_invite(invite: InviteSent, link: str) -> RenderedEmail:
    """`link` is derived by the caller from a key this package never sees (a preview passes a sample)."""
    sender = safe_branding(invite.sender)
    context = {
        "sender": sender,
        "name": (invite.name or "").strip(),
        "link": link,
        "expires": format_expiry(invite.expires_at),
    }
    return render_email(TEMPLATE, context, from_name=sender.display_name)
