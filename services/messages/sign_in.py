"""Client sign-in messages: the magic link (MagicLinkRequested) and the one-time code
(SignInCodeIssued, by email and SMS) → templates/magic_link/, templates/sign_in_code/.

Both live minutes, so their expiry is a duration and a time of day ("in 15 minutes, at
10:45 Lisbon time"); the duration is counted from `issued_at` (the event's time) when the
caller has it, so the same event always renders the same words.
"""

from __future__ import annotations

from datetime import datetime

from contracts.access import MagicLinkRequested, SignInCodeIssued
from services.messages.branding import Branding, safe_branding
from services.messages.rendering import RenderedEmail, format_duration, format_time, render_cached
from services.messages.sms import render_sms
from services.messages.wording import BUTTONS

MAGIC_LINK = "magic_link"
SIGN_IN_CODE = "sign_in_code"


def _expiry(expires_at: datetime, issued_at: datetime | None, sender: Branding) -> tuple[str, str]:
    """(`in 15 minutes, at 10:45 Lisbon time`, `in 15 minutes`), or the time alone without `issued_at`."""
    at = format_time(expires_at, sender.time_zone)
    if issued_at is None:
        return f"at {at}", f"at {at}"
    within = f"in {format_duration((expires_at - issued_at).total_seconds())}"
    return f"{within}, at {at}", within


def render_magic_link(request: MagicLinkRequested, link: str, *, issued_at: datetime | None = None) -> RenderedEmail:
    sender = safe_branding(request.sender)
    fixed = {"sender": sender, "button": BUTTONS["magic_link"]}
    values = {
        "name": (request.name or "").strip(),
        "email": request.email,
        "link": link,
        "expiry": _expiry(request.expires_at, issued_at, sender)[0],
    }
    return render_cached(MAGIC_LINK, fixed, values, from_name=sender.display_name, reply_to=sender.reply_to)


def render_sign_in_code(issued: SignInCodeIssued, code: str, *, issued_at: datetime | None = None) -> RenderedEmail:
    sender = safe_branding(issued.sender)
    values = {
        "name": (issued.name or "").strip(),
        "email": issued.email,
        "code": code,
        "expiry": _expiry(issued.expires_at, issued_at, sender)[0],
    }
    return render_cached(SIGN_IN_CODE, {"sender": sender}, values, from_name=sender.display_name,
                         reply_to=sender.reply_to)


def render_sign_in_code_sms(issued: SignInCodeIssued, code: str, *, issued_at: datetime | None = None) -> str:
    sender = safe_branding(issued.sender)
    return render_sms(SIGN_IN_CODE, {"sender": sender, "code": code,
                                     "expires_in": _expiry(issued.expires_at, issued_at, sender)[1]})
