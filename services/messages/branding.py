"""A workspace's branding, made safe to put into a message.

The contract records what staff configured; it ends up in CSS and `src` attributes,
where HTML autoescaping does not protect, and in the From header. So it is checked here,
when a message is rendered, rather than trusted: a bad value falls back to a safe one
instead of stopping the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contracts.access import Sender

DEFAULT_BRAND_COLOR = "#2F5BEA"
_HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


@dataclass(frozen=True)
class Branding:
    workspace_name: str
    display_name: str  # who the message is from, as the recipient knows them
    logo_url: str | None
    brand_color: str


def safe_branding(sender: Sender) -> Branding:
    return Branding(
        workspace_name=sender.workspace_name,
        display_name=sender.sender_name or sender.workspace_name,
        logo_url=_web_image(sender.logo_url),
        brand_color=_color(sender.brand_color),
    )


def _color(value: str | None) -> str:
    # A bad colour must not stop an invite; it must not reach the style attribute either.
    return value if value is not None and _HEX_COLOR.match(value) else DEFAULT_BRAND_COLOR


def _web_image(value: str | None) -> str | None:
    # Only web images: no javascript:, data: or tracking through odd schemes.
    if value is not None and value.lower().startswith(("https://", "http://")):
        return value
    return None
