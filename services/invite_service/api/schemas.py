"""Request and response bodies of the command API. Unknown fields are rejected: a typo
in a field name must not silently drop what the caller meant to set."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.invite_service.contacts import check_email, normalise_email, normalise_phone
from services.invite_service.domain.workspace import BUILT_IN_ROLES

Email = Annotated[str, BeforeValidator(normalise_email)]
# Kept as typed (trimmed): the invitation goes to this spelling; the account's identity is
# contacts.email_identity of it, so `Ana@Example.com` and `ana@example.com` are one account.
Address = Annotated[str, BeforeValidator(check_email)]
Phone = Annotated[str | None, BeforeValidator(normalise_phone)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BrandingIn(Strict):
    sender_name: str | None = Field(None, max_length=120, examples=["Pride Travelers"])
    logo_url: str | None = Field(None, max_length=2000, pattern=r"^https?://")
    brand_color: str | None = Field(None, pattern=r"^#[0-9A-Fa-f]{6}$", examples=["#0B7A75"])


def _refuse_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("null_not_allowed", "May not be null; leave the field out to keep its value.")
    return value


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _kept_when_absent(**constraints: Any) -> Any:
    """A setting a PUT may leave out (the stored value stays) but may not set to null: it has
    no 'no value', and a stored null broke every later read of the workspace and every invite.
    The None default is never validated; pydantic leaves it unset and `exclude_unset` drops it."""
    return Field(None, json_schema_extra=_without_default, **constraints)


NotNull = BeforeValidator(_refuse_null)


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError("invalid_time_zone", "Not an IANA time zone, such as Europe/Lisbon or UTC.") from None
    return value
Role = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class WorkspaceSettingsIn(Strict):
    """Every field optional: a PUT sets what it names and keeps the rest. Only
    `team_notify_email` and the branding fields take null, to clear them."""

    name: Annotated[str, NotNull] = _kept_when_absent(max_length=120)
    portal_enabled: Annotated[bool, NotNull] = _kept_when_absent()
    plan: Annotated[Literal["free", "pro"], NotNull] = _kept_when_absent()
    auto_invite_on_first_share: Annotated[bool, NotNull] = _kept_when_absent()
    invite_ttl_hours: Annotated[int, NotNull] = _kept_when_absent(ge=1, le=720)
    sign_in_method: Annotated[Literal["magic_link", "password", "code"], NotNull] = _kept_when_absent()
    branding: Annotated[BrandingIn, NotNull] = _kept_when_absent(description="Each field may be null to clear it")
    team_notify_email: Email | None = None
    roles: Annotated[list[Role], NotNull] = _kept_when_absent(
        description="Roles this workspace defines beyond owner, charter_client and customer"
    )
    portal_url: str | None = Field(
        None, max_length=2000, pattern=r"^https?://[^\s]+$",
        description="The host app's portal: signed-in clients are sent here with a one-time code",
    )
    portal_description: str | None = Field(None, max_length=300, description="A sentence on what the portal is for")
    reply_to: Email | None = Field(None, description="The workspace's contact address, Reply-To of its emails")
    time_zone: Annotated[str, NotNull, AfterValidator(_check_time_zone)] = _kept_when_absent(
        description="IANA time zone for dates in messages", examples=["Europe/Lisbon"]
    )
    magic_link_ttl_minutes: Annotated[int, NotNull] = _kept_when_absent(ge=1, le=1440)


class BrandingOut(BaseModel):
    sender_name: str | None
    logo_url: str | None
    brand_color: str | None


class WorkspaceOut(BaseModel):
    slug: str
    name: str
    portal_enabled: bool
    plan: str
    auto_invite_on_first_share: bool
    invite_ttl_hours: int
    sign_in_method: str
    branding: BrandingOut
    team_notify_email: str | None
    roles: list[str] = Field(description="The workspace's own client roles")
    portal_url: str | None = None
    portal_description: str | None = None
    reply_to: str | None = None
    time_zone: str = "UTC"
    magic_link_ttl_minutes: int = 15
    built_in_roles: list[str] = Field(
        default_factory=lambda: list(BUILT_IN_ROLES),
        description="Roles every workspace accepts; an invite may use these or `roles`",
    )


class Resource(Strict):
    type: Literal["trip", "project", "customer"]
    id: str = Field(min_length=1, max_length=200)


class InvitationIn(Strict):
    email: Address = Field(
        examples=["ana@example.com"],
        description="Sent to as typed; compared case-insensitively and after IDNA/Unicode normalisation",
    )
    name: str | None = Field(None, max_length=200)
    role: str = Field("customer", pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["charter_client"])
    company: str | None = Field(None, max_length=200)
    phone: Phone = Field(None, examples=["+14155550123"])
    contact_id: str | None = Field(None, max_length=200)
    resources: list[Resource] = Field(default_factory=list, max_length=100)
    channels: list[Literal["email", "sms"]] | None = Field(
        None, min_length=1, description="Default: email, plus SMS when a phone is on file"
    )

    @model_validator(mode="before")
    @classmethod
    def _missing_email_is_email_required(cls, data: Any) -> Any:
        # Required in the schema, yet a missing email answers its own code, email_required,
        # as a blank one does, rather than pydantic's generic `missing`.
        if isinstance(data, dict) and "email" not in data:
            return {**data, "email": None}
        return data

    @model_validator(mode="after")
    def _channels_follow_contact(self) -> InvitationIn:
        if self.channels is None:
            self.channels = ["email", "sms"] if self.phone else ["email"]
        elif "sms" in self.channels and not self.phone:
            raise PydanticCustomError("invalid_phone", "SMS was asked for, but this contact has no phone number.")
        self.channels = list(dict.fromkeys(self.channels))
        return self


class InvitationOut(BaseModel):
    account_id: UUID
    invitation_id: UUID
    status: Literal["pending"]
    expires_at: datetime
    position: int = Field(description="Event-store position of this write; the read side reports when it caught up")


class RowError(BaseModel):
    code: str = Field(examples=["invalid_email"])
    message: str


class BulkRowResult(BaseModel):
    email: str | None = Field(description="The row's email as sent (absent when the row had none)")
    status: Literal["created", "duplicate", "invalid"]
    account_id: UUID | None = Field(None, description="The new or existing account (created, duplicate)")
    error: RowError | None = Field(None, description="Why the row was not created (duplicate, invalid)")


class BulkInvitationsOut(BaseModel):
    results: list[BulkRowResult] = Field(description="One per row, in input order")
    created: int
    duplicate: int
    invalid: int
    position: int | None = Field(
        description="Event-store position of the last row stored; null when nothing was stored"
    )


class PreviewOut(BaseModel):
    kind: Literal["invite", "resend"] = Field(
        description="`invite` for a new contact; `resend` when the workspace already has an account for the email"
    )
    account_id: UUID
    account_status: str | None = Field(description="Status of the existing account; null for a new contact")
    would_send: bool = Field(
        description="False when the account is in a state where a resend is not allowed (active, disabled)"
    )
    what_happens: str = Field(description="What an invite of this contact would do now, in a sentence")
    recipient: str = Field(description="The address the email goes to, as typed")
    channels: list[Literal["email", "sms"]]
    from_name: str
    subject: str
    html: str
    text: str
    reply_to: str | None = Field(None, description="Reply-To of the email: the workspace's contact address")
    sms: str | None = Field(None, description="The text message, when the invite goes by SMS too")
    link: str = Field(description="The real link's shape with a sample token that is never valid (answers 410)")
    expires_at: datetime = Field(description="The expiry the email states, counted from now")
