"""The fields of an InviteSent event that the notifier needs, and the link it derives.

`contracts.AccessEventV1.data` is a plain mapping on the wire; this model is where the
notifier checks it. Branding is checked strictly here because it ends up in CSS and
`src` attributes, where HTML autoescaping does not protect.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from uuid import UUID

from pydantic import BaseModel, ConfigDict, field_validator

from services.common import tokens
from services.common.settings import NotifierSettings

DEFAULT_BRAND_COLOR = "#2F5BEA"
_HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


class Sender(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    workspace_name: str
    sender_name: str
    logo_url: str | None = None
    brand_color: str = DEFAULT_BRAND_COLOR

    @field_validator("brand_color", mode="before")
    @classmethod
    def _color(cls, value: object) -> str:
        # A bad colour must not stop an invite; it must not reach the style attribute either.
        return value if isinstance(value, str) and _HEX_COLOR.match(value) else DEFAULT_BRAND_COLOR

    @field_validator("logo_url", mode="before")
    @classmethod
    def _logo(cls, value: object) -> str | None:
        # Only web images: no javascript:, data: or tracking through odd schemes.
        if isinstance(value, str) and value.lower().startswith(("https://", "http://")):
            return value
        return None

    @property
    def display_name(self) -> str:
        return self.sender_name or self.workspace_name


class InviteSent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    workspace: str
    account_id: UUID
    email: str
    name: str | None = None  # staff may invite by email alone
    nonce: str
    expires_at: datetime
    channels: list[str] = ["email"]
    method: str = "manual"
    sender: Sender

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # The relay writes UTC; a naive time is read as UTC rather than failing the comparison.
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def claim_link(settings: NotifierSettings, invitation_id: UUID, invite: InviteSent) -> str:
    """The link in the email. Derived here, never stored, logged or published."""
    key = settings.porchlight_secret_key.get_secret_value().encode()
    token = tokens.make_token(key, tokens.CLAIM, invitation_id, invite.nonce)
    return tokens.claim_link(settings.public_base_url, invite.workspace, token)
