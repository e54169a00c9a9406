"""A workspace's branding and message settings, made safe to put into a message.

The contract records what staff configured; it ends up in CSS and `src` attributes,
where HTML autoescaping does not protect, and in the From and Reply-To headers. So it is
checked here, when a message is rendered, rather than trusted: a bad value falls back to a
safe one instead of stopping the message.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import timezone

from contracts.access import Sender
from services.messages.rendering import one_line, zone

DEFAULT_BRAND_COLOR = "#2F5BEA"
_HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ADDRESS = re.compile(r"^[^@\s<>\",;]+@[^@\s<>\",;]+\.[^@\s<>\",;]+$")


@dataclass(frozen=True)
class Branding:
    workspace_name: str
    display_name: str  # who the message is from, as the recipient knows them
    logo_url: str | None
    brand_color: str
    reply_to: str | None = None  # the workspace's contact address
    portal_description: str | None = None  # what the portal is for, one sentence
    portal_url: str | None = None  # the host app's portal: the onboarding link
    time_zone: str = "UTC"  # IANA; the dates in messages are written in it


@functools.lru_cache(maxsize=1024)
def safe_branding(sender: Sender) -> Branding:
    """Cached: a bulk invite renders thousands of messages with one workspace's sender."""
    return Branding(
        workspace_name=one_line(sender.workspace_name),
        display_name=one_line(sender.sender_name or sender.workspace_name),
        logo_url=_web_url(sender.logo_url),
        brand_color=_color(sender.brand_color),
        reply_to=_address(sender.reply_to),
        portal_description=(one_line(sender.portal_description or "") or None),
        portal_url=_web_url(sender.portal_url),
        time_zone=sender.time_zone if zone(sender.time_zone) is not timezone.utc else "UTC",
    )


def _color(value: str | None) -> str:
    # A bad colour must not stop an invite; it must not reach the style attribute either.
    return value if value is not None and _HEX_COLOR.match(value) else DEFAULT_BRAND_COLOR


def _web_url(value: str | None) -> str | None:
    # Only web addresses: no javascript:, data: or tracking through odd schemes.
    if value is not None and value.lower().startswith(("https://", "http://")) and not any(c.isspace() for c in value):
        return value
    return None


def _address(value: str | None) -> str | None:
    # A Reply-To header takes one plain address; anything else would be dropped by the
    # header parser at best, or add recipients at worst.
    if value is not None and _ADDRESS.match(value.strip()):
        return value.strip()
    return None
