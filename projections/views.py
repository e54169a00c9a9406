"""Response models of the query API: the shapes API.md promises for the status list."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

AccountState = Literal["not_invited", "pending", "active", "disabled"]


DeliveryStatus = Literal["sent", "failed", "suppressed", "retrying", "abandoned", "delivered", "bounced"]


class Resource(BaseModel):
    type: str = Field(description="What kind of thing the account may see", examples=["trip"])
    id: str = Field(description="The host app's id of it", examples=["trip-1042"])


class AccountSummary(BaseModel):
    """One row of the status list."""

    account_id: uuid.UUID
    email: str | None = Field(description="Normalised email of the contact")
    name: str | None
    role: str | None = Field(examples=["charter_client"])
    company: str | None
    phone: str | None = Field(None, description="E.164, when on file")
    contact_id: str | None = Field(None, description="The host app's contact id")
    resources: list[Resource] = Field(default_factory=list, description="What the account may see")
    status: AccountState
    invited_at: datetime = Field(description="When the first invite was sent")
    invited_by: str | None = Field(None, description="Staff id (or `system`) who sent the first invite")
    last_invite_sent_at: datetime | None = Field(None, description="When the newest invite was sent")
    expires_at: datetime | None = Field(description="When the newest invite's link expires")
    activated_at: datetime | None
    disabled_at: datetime | None
    disabled_by: str | None = Field(description="Staff id who disabled the account")
    disabled_reason: str | None = Field(None, description="Why it was disabled, as staff typed it (`disable`'s `reason`)")
    last_sign_in_at: datetime | None
    sign_ins: int = Field(description="How many times the account has signed in")
    link_expired: bool = Field(
        False, description="Pending, and the newest invite's link has lapsed: invited, never claimed"
    )
    last_delivery_status: DeliveryStatus | None = Field(
        None, description="Outcome of the most recent email or SMS"
    )
    last_delivery_at: datetime | None = Field(None, description="When that outcome was reported")
    actions: list[str] = Field(
        description="What staff may do now, as `POST .../accounts/{id}/{action}`", examples=[["resend", "revoke"]]
    )


class AccountPage(BaseModel):
    items: list[AccountSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class AccountCounts(BaseModel):
    """How many accounts of the workspace are in each state."""

    not_invited: int
    pending: int
    active: int
    disabled: int
    link_expired: int = Field(description="Of the pending ones, how many have a lapsed link")
    total: int


class Delivery(BaseModel):
    """One attempt to deliver a message to the account."""

    channel: Literal["email", "sms"]
    provider: str = Field(examples=["smtp", "postmark"])
    status: DeliveryStatus = Field(
        description="`retrying`: failed for now, another attempt follows; `abandoned`: the last attempt failed; "
        "`delivered`/`bounced`: what the provider reported after accepting it"
    )
    attempt: int
    audience: Literal["client", "team"] = Field("client", description="`team`: the team's notice about this account")
    error: str | None = Field(description="Why it failed, was suppressed or bounced (the provider's reason)")
    at: datetime


class SignIn(BaseModel):
    """One sign-in attempt: a success (SignedIn) or a wrong code or password (VerificationFailed)."""

    at: datetime
    method: str = Field(examples=["magic_link"])
    outcome: Literal["signed_in", "failed"] = "signed_in"
    ip: str | None = Field(None, description="The client's address, as the API saw it through trusted proxies")
    user_agent: str | None = None


class AccountDetail(AccountSummary):
    """One account's access tab: the list row (with the `actions` allowed now) plus its
    delivery attempts and recent sign-ins."""

    deliveries: list[Delivery] = Field(description="Delivery attempts, newest first")
    email_held: str | None = Field(
        None, description="Why no email goes to the account's address (a hard bounce or an inactive recipient), "
        "until staff resend; null when mail is not held"
    )
    recent_sign_ins: list[SignIn] = Field(description="Most recent sign-ins, newest first")


class TripTravelerView(BaseModel):
    """A traveler of a trip, as seen in its share events, with their portal state now."""

    contact_id: str | None = Field(None, description="The host app's contact id")
    name: str | None
    email: str | None = Field(description="As shared upstream")
    phone: str | None = None
    primary: bool = Field(description="The trip's primary traveler")
    account_id: uuid.UUID | None = Field(description="Their portal account (or the one an invite would create); "
                                         "null without a valid email")
    status: AccountState = Field(description="The pill: `not_invited`, `pending`, `active` or `disabled`")
    actions: list[str] = Field(description="What staff may do now (`invite` when not invited)",
                               examples=[["invite"]])


class TripTravelers(BaseModel):
    trip_id: str
    travelers: list[TripTravelerView] = Field(description="In the order they were first seen in the trip's shares")
