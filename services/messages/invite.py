"""The invitation: an InviteSent event and its claim link → templates/invite/ (email and SMS).

One template set serves a first invite, a resend and a reactivation (each records its own
InviteSent, with `method` saying which) and an auto-invite, which names the workspace
rather than a person.
"""

from __future__ import annotations

from contracts.access import InviteSent
from services.messages.branding import safe_branding
from services.messages.rendering import RenderedEmail, format_expiry, render_cached
from services.messages.sms import render_sms
from services.messages.wording import BUTTONS

TEMPLATE = "invite"
_KINDS = {"resend": "resend", "reactivate": "reactivate"}  # anything else reads as a first invite


def _kind(invite: InviteSent) -> str:
    return _KINDS.get(invite.method, "invite")


def _inviter(invite: InviteSent) -> str | None:
    # Auto-invites are sent by the workspace, not a person: they name the workspace only.
    if invite.method == "auto_on_share":
        return None
    return (invite.inviter_name or "").strip() or None


def render_invite(invite: InviteSent, link: str) -> RenderedEmail:
    """`link` is derived by the caller from a key this package never sees (a preview passes a sample)."""
    sender = safe_branding(invite.sender)
    fixed = {"sender": sender, "kind": _kind(invite), "button": BUTTONS["invite"]}
    values = {
        "name": (invite.name or "").strip(),
        "inviter": _inviter(invite),
        "email": invite.email,
        "link": link,
        "expires": format_expiry(invite.expires_at, sender.time_zone),
    }
    return render_cached(TEMPLATE, fixed, values, from_name=sender.display_name, reply_to=sender.reply_to)


def render_invite_sms(invite: InviteSent, link: str) -> str:
    """The invitation as one SMS: who invites, and the link."""
    sender = safe_branding(invite.sender)
    context = {"sender": sender, "inviter": _inviter(invite), "link": link, "button": BUTTONS["invite"]}
    return render_sms(TEMPLATE, context)
