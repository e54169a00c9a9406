"""Render an invitation into the three parts of an email: subject, HTML and plain text.

Pure functions over Jinja2 templates in `templates/`; no I/O beyond reading them once.
HTML templates are autoescaped (a contact named `<script>` is shown as text); the
subject and text parts are not HTML and are not escaped. CSS is inlined because most
mail clients drop `<style>` blocks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import css_inline
import jinja2

from services.notifier.invite import InviteSent

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the test, not the customer's email
        keep_trailing_newline=True,
    )


def format_expiry(expires_at: datetime) -> str:
    """`Monday 14 July 2025 at 09:30 UTC`: unambiguous for readers in any country."""
    when = expires_at.astimezone(timezone.utc) if expires_at.tzinfo else expires_at.replace(tzinfo=timezone.utc)
    return f"{when:%A} {when.day} {when:%B %Y at %H:%M} UTC"


def render_invite(invite: InviteSent, link: str) -> RenderedEmail:
    env = _environment()
    context = {
        "sender": invite.sender,
        "name": (invite.name or "").strip(),
        "link": link,
        "expires": format_expiry(invite.expires_at),
    }
    # A header must be one line: a newline in a sender name would otherwise inject headers.
    subject = " ".join(env.get_template("invite_subject.txt").render(context).split())
    html = env.get_template("invite.html").render(context, subject=subject)
    text = env.get_template("invite.txt").render(context)
    return RenderedEmail(subject=subject, html=css_inline.inline(html), text=text)
