"""Render a message's template set into the parts of an email: subject, HTML and plain text.

Pure functions over the Jinja2 templates in `templates/<message>/`; no I/O beyond reading
them once. HTML templates are autoescaped (a contact named `<script>` is shown as text);
the subject and text parts are not HTML and are not escaped. CSS is inlined because most
mail clients drop `<style>` blocks.

Inlining CSS is most of the cost of an email (it parses and re-serialises the document),
and for one workspace and message type everything but a few per-recipient values is the
same. So a template set is rendered and inlined once per (message, workspace branding,
which per-recipient values are present) with a placeholder for each such value, and each
email is that skeleton with the values put in, HTML-escaped in the HTML part. Rules that
keep this equal to rendering each email from scratch (test_messages_rendering.py checks):
a template only prints a per-recipient value or tests whether it is present (no filters,
no comparisons on it), and everything else it uses is in the cache key.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import css_inline
import jinja2
from markupsafe import escape

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    from_name: str = ""  # the From display name; one line, like the subject
    reply_to: str | None = None  # the workspace's contact address, when it has one


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the test, not the customer's email
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the code: no stat() per render
    )


def template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


def one_line(value: str) -> str:
    """A header must be one line: a newline in a sender name would otherwise inject headers."""
    return " ".join(value.split())


@functools.lru_cache(maxsize=256)
def zone(name: str | None) -> ZoneInfo | timezone:
    """The workspace's zone; UTC for none or one this system does not know (a message is
    still sent, in UTC, rather than dropped)."""
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def zone_label(name: str | None) -> str:
    """How a reader knows the zone: `UTC`, or the zone's city (`Lisbon time`): abbreviations
    such as CST are ambiguous and many zones have only numeric ones."""
    tz = zone(name)
    if tz is timezone.utc or not isinstance(tz, ZoneInfo) or "/" not in tz.key or tz.key.startswith("Etc/"):
        return "UTC"
    return tz.key.rsplit("/", 1)[1].replace("_", " ") + " time"


def _local(when: datetime, time_zone: str | None) -> datetime:
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.astimezone(zone(time_zone))


def format_expiry(expires_at: datetime, time_zone: str | None = "UTC") -> str:
    """`Monday 14 July 2025 at 09:30 UTC`, or `... at 10:30 Lisbon time` in the workspace's
    zone: a date in words is unambiguous for readers in any country."""
    when = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=timezone.utc)
    # Shown to the minute, so one minute's expiries (a bulk invite's) share one formatting.
    return _format_minute(int(when.timestamp()) // 60, time_zone)


@functools.lru_cache(maxsize=4096)
def _format_minute(minute: int, time_zone: str | None) -> str:
    when = datetime.fromtimestamp(minute * 60, timezone.utc).astimezone(zone(time_zone))
    return f"{when:%A} {when.day} {when:%B %Y at %H:%M} {zone_label(time_zone)}"


def format_time(at: datetime, time_zone: str | None = "UTC") -> str:
    """`10:45 Lisbon time`: for short-lived codes and links, where the day goes without saying."""
    return f"{_local(at, time_zone):%H:%M} {zone_label(time_zone)}"


def format_duration(seconds: float) -> str:
    """`15 minutes`, `2 hours`, `7 days`: a link's lifetime in words, rounded to its unit."""
    minutes = round(seconds / 60)
    if minutes < 90:
        value, unit = max(minutes, 1), "minute"
    elif minutes < 48 * 60:
        value, unit = round(minutes / 60), "hour"
    else:
        value, unit = round(minutes / 1440), "day"
    return f"{value} {unit}{'' if value == 1 else 's'}"


def render_email(message: str, context: dict[str, Any], *, from_name: str, reply_to: str | None = None) -> RenderedEmail:
    """The template set `templates/<message>/` (subject.txt, body.html, body.txt) over `context`,
    rendered from scratch (see `render_cached` for the way messages are sent)."""
    subject = one_line(template(f"{message}/subject.txt").render(context))
    html = template(f"{message}/body.html").render(context, subject=subject)
    text = template(f"{message}/body.txt").render(context)
    return RenderedEmail(
        subject=subject, html=css_inline.inline(html), text=text, from_name=one_line(from_name), reply_to=reply_to
    )


# The cached path.

# Random per process, so no value a recipient or staff member types can be mistaken for one;
# filling is one pass over the skeleton, so a value is never scanned for placeholders either.
_TAG = secrets.token_hex(4)
_PLACEHOLDER = re.compile(rf"zq{_TAG}x([a-z_]+)xq{_TAG}z")


_SPECIAL = re.compile(r"[&<>\"']")  # what HTML escaping changes; most values have none


def _placeholder(name: str) -> str:
    return f"zq{_TAG}x{name}xq{_TAG}z"


@dataclass(frozen=True)
class _Skeleton:
    """A part as a `str.format` template: the literal text with its braces doubled, each
    placeholder a `{name}` field. `format_map` fills it in one pass in C and never looks
    into what it puts in."""

    template: str

    @classmethod
    def of(cls, text: str) -> _Skeleton:
        pieces = _PLACEHOLDER.split(text)
        out = []
        for i, piece in enumerate(pieces):
            out.append("{" + piece + "}" if i % 2 else piece.replace("{", "{{").replace("}", "}}"))
        return cls("".join(out))

    def fill(self, values: Mapping[str, str]) -> str:
        return self.template.format_map(values)


@functools.lru_cache(maxsize=1024)
def _skeletons(
    message: str, fixed: tuple[tuple[str, Any], ...], present: tuple[str, ...], absent: tuple[str, ...]
) -> tuple[_Skeleton, _Skeleton, _Skeleton]:
    context: dict[str, Any] = dict(fixed)
    context.update({name: _placeholder(name) for name in present})
    context.update({name: None for name in absent})
    subject = one_line(template(f"{message}/subject.txt").render(context))
    html = template(f"{message}/body.html").render(context, subject=subject)
    text = template(f"{message}/body.txt").render(context)
    return _Skeleton.of(subject), _Skeleton.of(css_inline.inline(html)), _Skeleton.of(text)


def render_cached(
    message: str,
    fixed: Mapping[str, Any],
    values: Mapping[str, str | None],
    *,
    from_name: str,
    reply_to: str | None = None,
) -> RenderedEmail:
    """`templates/<message>/` with `fixed` (hashable: branding, wording choices) and the
    per-recipient `values` (strings, or None/"" when absent), equal to `render_email` over
    both. One skeleton per (message, fixed, which values are present) is rendered and inlined;
    each call only fills it in."""
    present = tuple(sorted(k for k, v in values.items() if v))
    absent = tuple(sorted(k for k, v in values.items() if not v))
    subject_s, html_s, text_s = _skeletons(message, tuple(sorted(fixed.items())), present, absent)
    raw = {k: v for k, v in values.items() if v}
    # The subject, as it appears in the HTML <title>, is one line like the header.
    subject = one_line(subject_s.fill(raw))
    escaped = {k: str(escape(v)) if _SPECIAL.search(v) else v for k, v in raw.items()}
    return RenderedEmail(
        subject=subject,
        html=html_s.fill(escaped),
        text=text_s.fill(raw),
        from_name=one_line(from_name),
        reply_to=reply_to,
    )


def render_uncached(
    message: str,
    fixed: Mapping[str, Any],
    values: Mapping[str, str | None],
    *,
    from_name: str,
    reply_to: str | None = None,
) -> RenderedEmail:
    """What `render_cached` stands for: the same templates rendered from scratch (tests, bench)."""
    return render_email(message, {**fixed, **values}, from_name=from_name, reply_to=reply_to)
