"""Notices to the workspace's team (`team_notify_email`): an invitation accepted, a client
locked out, an auto-invite sent, a delivery that failed for good → templates/team_*/.

They come from "<workspace> client portal" (never our product's name) and say why the team
receives them.
"""

from __future__ import annotations

from datetime import datetime

from contracts.access import Sender
from services.messages.branding import Branding, safe_branding
from services.messages.rendering import RenderedEmail, format_expiry, render_cached

# What a message is, in a sentence to the team: "The invitation email to ana@... could not be delivered".
WHAT = {
    "invite": "invitation",
    "password_reset": "password reset",
    "magic_link": "sign-in link",
    "sign_in_code": "sign-in code",
    "team_invitation_accepted": "notice that an invitation was accepted",
    "team_locked_out": "notice of a locked-out client",
    "team_auto_invite_sent": "notice of an automatic invitation",
}
METHODS = {"claim": "the invitation link", "magic_link": "a sign-in link", "password": "a password", "code": "a code"}


def team_from_name(sender: Branding) -> str:
    return f"{sender.workspace_name} client portal"


def neutral_branding(workspace: str) -> Branding:
    """For an event that records no sender (AccountActivated): the workspace by its slug."""
    return safe_branding(Sender(workspace_name=workspace, sender_name=workspace))


def _render(message: str, sender: Branding, fixed: dict, values: dict[str, str | None]) -> RenderedEmail:
    # No Reply-To: the workspace's contact address is the team itself.
    return render_cached(message, {"sender": sender, **fixed}, values, from_name=team_from_name(sender))


def render_invitation_accepted(
    sender: Branding, *, team_address: str, email: str | None, name: str | None, at: datetime
) -> RenderedEmail:
    values = {"team_address": team_address, "email": email or "the client", "name": (name or "").strip(),
              "at": format_expiry(at, sender.time_zone)}
    return _render("team_invitation_accepted", sender, {}, values)


def render_locked_out(
    sender: Branding, *, team_address: str, email: str, name: str | None, method: str, until: datetime,
    ip: str | None,
) -> RenderedEmail:
    values = {"team_address": team_address, "email": email, "name": (name or "").strip(), "ip": ip,
              "method": METHODS.get(method, method), "until": format_expiry(until, sender.time_zone)}
    return _render("team_locked_out", sender, {}, values)


def render_auto_invite_sent(
    sender: Branding, *, team_address: str, email: str, name: str | None, expires_at: datetime,
    reason: str | None,
) -> RenderedEmail:
    values = {"team_address": team_address, "email": email, "name": (name or "").strip(), "reason": reason,
              "expires": format_expiry(expires_at, sender.time_zone)}
    return _render("team_auto_invite_sent", sender, {}, values)


def render_delivery_failed(
    sender: Branding, *, team_address: str, message: str, channel: str, recipient: str, name: str | None,
    reason: str | None, abandoned: bool, attempts: int,
) -> RenderedEmail:
    what = WHAT.get(message, "message") + (" text message" if channel == "sms" else " email")
    fixed = {"abandoned": abandoned, "what": what, "channel": "phone number" if channel == "sms" else "address"}
    values = {"team_address": team_address, "recipient": recipient, "name": (name or "").strip(),
              "reason": (reason or "").strip(), "attempts": str(attempts)}
    return _render("team_delivery_failed", sender, fixed, values)
