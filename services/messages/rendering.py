"""Render a message's template set into the parts of an email: subject, HTML and plain text.

Pure functions over the Jinja2 templates in `templates/<message>/`; no I/O beyond reading
them once. HTML templates are autoescaped (a contact named `<script>` is shown as text);
the subject and text parts are not HTML and are not escaped. CSS is inlined because most
mail clients drop `<style>` blocks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import css_inline
import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    from_name: str = ""  # the From display name; one line, like the subject


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the test, not the customer's email
        keep_trailing_newline=True,
    )


def one_line(value: str) -> str:
    """A header must be one line: a newline in a sender name would otherwise inject headers."""
    return " ".join(value.split())


def format_expiry(expires_at: datetime) -> str:
    """`Monday 14 July 2025 at 09:30 UTC`: unambiguous for readers in any country."""
    when = expires_at.astimezone(timezone.utc) if expires_at.tzinfo else expires_at.replace(tzinfo=timezone.utc)
    return f"{when:%A} {when.day} {when:%B %Y at %H:%M} UTC"


def render_email(message: str, context: dict[str, Any], *, from_name: str) -> RenderedEmail:
    """The template set `templates/<message>/` (subject.txt, body.html, body.txt) over `context`."""
    env = _environment()
    subject = one_line(env.get_template(f"{message}/subject.txt").render(context))
    html = env.get_template(f"{message}/body.html").render(context, subject=subject)
    text = env.get_template(f"{message}/body.txt").render(context)
    return RenderedEmail(subject=subject, html=css_inline.inline(html), text=text, from_name=one_line(from_name))
