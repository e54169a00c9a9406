"""`porchlight.access.v1`: every domain event of the write side, as the relay publishes it.

The envelope (`AccessEventV1`) is the same for every event type; `data` carries the
event's own fields. Each event type has a typed payload model here and a typed envelope
(`InviteSentV1`, ...) whose `data` is that model: producers build `data` from these
models field by field, consumers validate against them. No payload ever holds a secret:
links and codes are derived from a nonce and a key only Porchlight's processes hold.

Within v1 every model ignores fields it does not know (producers may add, never remove
or change), so a consumer that has not been upgraded yet keeps working. An event type a
consumer does not know arrives as the plain `AccessEventV1` and is skipped, not refused.
The relay also sends the type as the Kafka header `type`, so consumers can route a
message without parsing its body.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

# Event type names, as the write side records them.
WORKSPACE_CREATED = "WorkspaceCreated"
WORKSPACE_SETTINGS_CHANGED = "WorkspaceSettingsChanged"
ACCOUNT_CREATED = "AccountCreated"
ACCOUNT_ACTIVATED = "AccountActivated"
INVITE_SENT = "InviteSent"
TOKEN_CLAIMED = "TokenClaimed"
INVITE_RESENT = "InviteResent"
INVITE_REVOKED = "InviteRevoked"
INVITATION_VOIDED = "InvitationVoided"
ACCESS_DISABLED = "AccessDisabled"
ACCESS_REENABLED = "AccessReenabled"
PASSWORD_RESET_REQUESTED = "PasswordResetRequested"
MAGIC_LINK_REQUESTED = "MagicLinkRequested"
SIGN_IN_CODE_ISSUED = "SignInCodeIssued"
VERIFICATION_FAILED = "VerificationFailed"
VERIFICATION_LOCKED_OUT = "VerificationLockedOut"
SIGNED_IN = "SignedIn"
PASSWORD_SET = "PasswordSet"
TRIP_FIRST_SHARED = "TripFirstShared"
TRIP_SHARED = "TripShared"

TYPE_HEADER = "type"  # Kafka header with the event type, for routing without parsing

# Namespace for event ids: uuid5(namespace, f"{aggregate_id}/{version}"), so the same
# stored event always gets the same id however often the relay publishes it.
EVENT_ID_NAMESPACE = uuid.UUID("6f1f2d0a-3f5e-4d55-9a57-2f5cf7f0f0a1")


def event_id_for(aggregate_id: uuid.UUID, version: int) -> uuid.UUID:
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}/{version}")


def _assume_utc(value: datetime) -> datetime:
    # The relay writes UTC; a naive time is read as UTC rather than failing a comparison later.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_assume_utc)]


class _Contract(BaseModel):
    # Tolerant reader: fields added within v1 are ignored, never a reason to dead-letter.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Cause(_Contract):
    """The upstream event that made the system act (added within v1): for an auto-invite, the share."""

    event_id: uuid.UUID = Field(description="The upstream event's id (a `trips.shares.v1` event_id)")
    topic: str | None = Field(None, examples=["trips.shares.v1"])
    trip_id: str | None = Field(None, examples=["T-1042"])
    kind: str | None = Field(None, description="What was shared", examples=["invoice"])
    shared_by: str | None = Field(None, description="Who shared it upstream", examples=["staff-42"])


class Actor(_Contract):
    """Who caused an event: a staff member, the client, or the system (with a reason)."""

    kind: Literal["staff", "client", "system"]
    id: str | None = Field(None, description="Staff user id (JWT `sub`) or portal account id", examples=["staff-42"])
    reason: str | None = Field(None, description="Why the system acted", examples=["first invoice share"])
    # Left out when absent, so every actor recorded before it reads (and publishes) as it did.
    cause: Cause | None = Field(
        None, description="For the system: the upstream event it acted on", exclude_if=lambda v: v is None
    )
    name: str | None = Field(
        None, description="The staff member's display name, when the host app's token carries one (`name` claim)",
        examples=["Pat"], exclude_if=lambda v: v is None,
    )


# Payloads: one model per event type.


class Branding(_Contract):
    """In a change, only the branding fields that changed are present."""

    sender_name: str | None = Field(None, examples=["Pride Travelers"])
    logo_url: str | None = Field(None, examples=["https://example.com/logo.png"])
    brand_color: str | None = Field(None, description="#RRGGBB", examples=["#0B7A75"])

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class WorkspaceSettings(_Contract):
    """A workspace's portal settings. In a change, only the settings that changed are present."""

    name: str | None = None
    portal_enabled: bool | None = None
    plan: str | None = Field(None, examples=["pro"])
    auto_invite_on_first_share: bool | None = None
    invite_ttl_hours: int | None = None
    sign_in_method: str | None = Field(None, examples=["magic_link"])
    branding: Branding | None = None
    team_notify_email: str | None = None
    roles: list[str] | None = None
    portal_url: str | None = Field(None, description="The host app's portal, where signed-in clients are sent")
    portal_description: str | None = Field(None, description="A sentence on what the portal is for, for the invite")
    reply_to: str | None = Field(None, description="The workspace's contact address: Reply-To of its emails")
    time_zone: str | None = Field(None, description="IANA zone for dates in messages", examples=["Europe/Lisbon"])
    magic_link_ttl_minutes: int | None = None

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A change names only what changed; `null` is a value (a cleared setting), absence is not.
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class WorkspaceCreated(_Contract):
    slug: str = Field(examples=["pride-travelers"])
    settings: WorkspaceSettings


class WorkspaceSettingsChanged(_Contract):
    changes: WorkspaceSettings = Field(description="Only the settings that changed, with their new values")


class Resource(_Contract):
    type: str = Field(examples=["trip"])
    id: str = Field(examples=["T-1042"])


class AccountCreated(_Contract):
    workspace: str
    email: str = Field(description="Normalised (lower-case) address", examples=["ana@example.com"])
    name: str | None = None
    role: str = Field(examples=["customer"])
    company: str | None = None
    phone: str | None = Field(None, description="E.164", examples=["+14155550123"])
    contact_id: str | None = None
    resources: list[Resource] = Field(default_factory=list)
    invitation_id: uuid.UUID = Field(description="The invitation sent with the account")


class AccountActivated(_Contract):
    invitation_id: uuid.UUID = Field(description="The invitation whose claim activated the account")
    # Added within v1, for the team's "invitation accepted" notice.
    email: str | None = None
    name: str | None = None
    workspace_name: str | None = Field(None, description="The workspace's display name when the claim was made")


class Sender(_Contract):
    """What an invitation is sent as, recorded on it for the email and for audit.

    As recorded, not as safe to show: a consumer that puts these in markup checks them
    first (services/messages/branding.py).
    """

    workspace_name: str = Field(examples=["Pride Travelers"])
    sender_name: str = Field(examples=["Pride Travelers"])
    logo_url: str | None = None
    brand_color: str | None = Field(None, description="#RRGGBB", examples=["#0B7A75"])
    # Added within v1 (absent on events recorded before): what the messages say beyond the brand.
    reply_to: str | None = Field(None, description="Reply-To of the email: the workspace's contact address")
    portal_description: str | None = Field(None, description="What the portal is for, one sentence")
    portal_url: str | None = Field(None, description="The host app's portal (the onboarding link)")
    time_zone: str = Field("UTC", description="IANA zone the message's dates are written in")
    team_notify_email: str | None = Field(None, description="Where team notifications about this account go")


class InviteSent(_Contract):
    workspace: str
    account_id: uuid.UUID
    email: str = Field(examples=["ana@example.com"])
    name: str | None = Field(None, description="Staff may invite by email alone")
    nonce: str = Field(description="Not a secret: the link is an HMAC over it with a key that never leaves Porchlight")
    expires_at: UtcDatetime
    channels: list[str] = Field(default_factory=lambda: ["email"], examples=[["email", "sms"]])
    method: str = Field("manual", description="`manual` or `auto_on_share`")
    sender: Sender
    inviter_name: str | None = Field(
        None, description="The staff member who invited, as the host app names them; none for auto-invites",
        examples=["Pat"],
    )
    inviter_staff_id: str | None = Field(
        None, description="The inviting staff member (JWT `sub`), whose connected Gmail may send it"
    )
    phone: str | None = Field(None, description="E.164, for the SMS channel")


class TokenClaimed(_Contract):
    at: datetime = Field(description="When the link was claimed")


class InviteResent(_Contract):
    """The account now points at a fresh invitation (its own InviteSent carries the email's
    details); the previous link stops working. Also recorded by a reactivate."""

    invitation_id: uuid.UUID = Field(description="The new invitation")
    expires_at: UtcDatetime = Field(description="When the new link expires")
    at: UtcDatetime


class InviteRevoked(_Contract):
    """Staff cancelled the pending invite: its link is void and the account is disabled."""

    at: UtcDatetime


class InvitationVoided(_Contract):
    """An invitation's link stopped working before it was claimed."""

    reason: Literal["superseded", "revoked"] = Field(description="A resend replaced it, or staff revoked it")
    at: UtcDatetime


class AccessDisabled(_Contract):
    """The client can no longer sign in; every session fails on its next request. Who did it is the actor."""

    at: UtcDatetime
    reason: str | None = Field(None, description="Why, as staff typed it", examples=["left the company"])


class AccessReenabled(_Contract):
    """Access restored, silently: `active` if the account had been active, else `pending`."""

    status: Literal["pending", "active"]


class PasswordResetRequested(_Contract):
    """Staff sent a password reset: everything its email needs, as InviteSent has it. The
    link is an HMAC over the nonce, which is not a secret."""

    nonce: str = Field(description="Not a secret: the link is an HMAC over it with a key that never leaves Porchlight")
    expires_at: UtcDatetime
    email: str = Field(description="Where to send it: the address the account was last invited at, as typed",
                       examples=["Ana@Example.com"])
    name: str | None = None
    sender: Sender


# Client sign-in. Links and codes are derived from the nonce with a key only Porchlight's
# processes hold (services/common/tokens.py): the nonce is not a secret, the link and the
# code are, and neither is ever recorded.

SignInMethod = Literal["claim", "magic_link", "password", "code"]


class MagicLinkRequested(_Contract):
    """The client asked for a sign-in link; the previous one stops working."""

    nonce: str = Field(description="Not a secret: the link is an HMAC over it")
    expires_at: UtcDatetime
    email: str = Field(description="Where to send it, as the account was invited")
    name: str | None = None
    sender: Sender


class SignInCodeIssued(_Contract):
    """A one-time code was issued; only the latest one works. The 6 digits are derived from
    the nonce with Porchlight's key, so the notifier can send them and nothing stores them."""

    nonce: str = Field(description="Not a secret: the code is derived from it")
    expires_at: UtcDatetime
    email: str
    name: str | None = None
    phone: str | None = Field(None, description="E.164; the code also goes by SMS when present")
    channels: list[Literal["email", "sms"]] = Field(default_factory=lambda: ["email"])
    sender: Sender


class VerificationFailed(_Contract):
    """A wrong code or password (never the attempt itself)."""

    method: SignInMethod
    at: UtcDatetime
    failures: int = Field(ge=1, description="Failures in a row, this one included")
    ip: str | None = None
    user_agent: str | None = None


class VerificationLockedOut(_Contract):
    """Too many failures: the code died and sign-in is refused until `until`."""

    at: UtcDatetime
    until: UtcDatetime
    method: SignInMethod
    email: str
    name: str | None = None
    ip: str | None = None
    sender: Sender = Field(description="For the team's notice: its address and branding")


class SignedIn(_Contract):
    """A successful sign-in (a claim counts as the first)."""

    method: SignInMethod
    at: UtcDatetime
    ip: str | None = None
    user_agent: str | None = None


class PasswordSet(_Contract):
    """A password was set or changed (the hash lives outside the event store). After a
    reset every other session of the account ends."""

    at: UtcDatetime
    reason: Literal["claim", "reset", "change"]


# Trips (auto-invite on first share). One aggregate per (workspace, trip id); its events carry
# the travelers seen in the shares (never a secret), so the read side can show each one's
# portal state beside the trip.


class TripTraveler(_Contract):
    contact_id: str | None = None
    name: str | None = None
    email: str | None = Field(None, description="As shared upstream")
    phone: str | None = None
    primary: bool = False
    account_id: uuid.UUID | None = Field(
        None, description="The portal account this traveler's email has or would have; null without a valid email"
    )


class TripShareInfo(_Contract):
    event_id: uuid.UUID = Field(description="The share's `trips.shares.v1` event_id")
    kind: str = Field(examples=["invoice"])
    shared_by: str | None = None
    occurred_at: UtcDatetime


class AutoInviteDecision(_Contract):
    """What auto-invite did on the trip's first share: invited one traveler, or skipped, and why."""

    outcome: Literal["invited", "skipped"]
    reason: str | None = Field(
        None,
        description="Why nothing was sent: `auto_invite_off`, `unknown_workspace`, `portal_disabled`, "
        "`plan_required`, `no_candidate` (no traveler with a valid email), `account_exists`",
        examples=["account_exists"],
    )
    account_id: uuid.UUID | None = Field(None, description="The candidate's account (invited or already there)")
    invitation_id: uuid.UUID | None = None
    email: str | None = Field(None, description="The candidate's email")


class TripFirstShared(_Contract):
    """The trip's first invoice or proposal share, and auto-invite's one decision for the trip."""

    workspace: str
    trip_id: str = Field(examples=["T-1042"])
    share: TripShareInfo
    travelers: list[TripTraveler] = Field(default_factory=list)
    auto_invite: AutoInviteDecision


class TripShared(_Contract):
    """A later share of the trip: its travelers are recorded; auto-invite does nothing."""

    workspace: str
    trip_id: str
    share: TripShareInfo
    travelers: list[TripTraveler] = Field(default_factory=list)


# The envelope.


class AccessEventV1(BaseModel):
    """One domain event, as published to `porchlight.access.v1`, keyed by account id.

    `data` is the event's payload as a mapping; the typed envelopes below give its model.
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    event_id: uuid.UUID = Field(description="Stable id of this event: the same on every re-publish")
    type: str = Field(description="Event type, past tense", examples=[INVITE_SENT])
    workspace: str = Field(description="Workspace slug", examples=["pride-travelers"])
    account_id: uuid.UUID | None = Field(
        description="Portal account the event concerns; null for workspace-level events"
    )
    aggregate_id: uuid.UUID
    aggregate_version: int = Field(ge=1)
    position: int = Field(ge=1, description="Position in the event store's notification log")
    occurred_at: datetime
    actor: Actor
    data: Any = Field(default_factory=dict, description="The event's own fields; never a secret")

    @property
    def key(self) -> bytes:
        """Kafka key: the account id keeps one account's events in order on one partition."""
        return str(self.account_id or self.aggregate_id).encode()

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers: the type, so a consumer routes a message to its handler without parsing it."""
        return [(TYPE_HEADER, self.type.encode())]


class WorkspaceCreatedV1(AccessEventV1):
    type: Literal["WorkspaceCreated"] = WORKSPACE_CREATED
    data: WorkspaceCreated


class WorkspaceSettingsChangedV1(AccessEventV1):
    type: Literal["WorkspaceSettingsChanged"] = WORKSPACE_SETTINGS_CHANGED
    data: WorkspaceSettingsChanged


class AccountCreatedV1(AccessEventV1):
    type: Literal["AccountCreated"] = ACCOUNT_CREATED
    data: AccountCreated


class AccountActivatedV1(AccessEventV1):
    type: Literal["AccountActivated"] = ACCOUNT_ACTIVATED
    data: AccountActivated


class InviteSentV1(AccessEventV1):
    type: Literal["InviteSent"] = INVITE_SENT
    data: InviteSent


class TokenClaimedV1(AccessEventV1):
    type: Literal["TokenClaimed"] = TOKEN_CLAIMED
    data: TokenClaimed


class InviteResentV1(AccessEventV1):
    type: Literal["InviteResent"] = INVITE_RESENT
    data: InviteResent


class InviteRevokedV1(AccessEventV1):
    type: Literal["InviteRevoked"] = INVITE_REVOKED
    data: InviteRevoked


class InvitationVoidedV1(AccessEventV1):
    type: Literal["InvitationVoided"] = INVITATION_VOIDED
    data: InvitationVoided


class AccessDisabledV1(AccessEventV1):
    type: Literal["AccessDisabled"] = ACCESS_DISABLED
    data: AccessDisabled


class AccessReenabledV1(AccessEventV1):
    type: Literal["AccessReenabled"] = ACCESS_REENABLED
    data: AccessReenabled


class PasswordResetRequestedV1(AccessEventV1):
    type: Literal["PasswordResetRequested"] = PASSWORD_RESET_REQUESTED
    data: PasswordResetRequested


class MagicLinkRequestedV1(AccessEventV1):
    type: Literal["MagicLinkRequested"] = MAGIC_LINK_REQUESTED
    data: MagicLinkRequested


class SignInCodeIssuedV1(AccessEventV1):
    type: Literal["SignInCodeIssued"] = SIGN_IN_CODE_ISSUED
    data: SignInCodeIssued


class VerificationFailedV1(AccessEventV1):
    type: Literal["VerificationFailed"] = VERIFICATION_FAILED
    data: VerificationFailed


class VerificationLockedOutV1(AccessEventV1):
    type: Literal["VerificationLockedOut"] = VERIFICATION_LOCKED_OUT
    data: VerificationLockedOut


class SignedInV1(AccessEventV1):
    type: Literal["SignedIn"] = SIGNED_IN
    data: SignedIn


class PasswordSetV1(AccessEventV1):
    type: Literal["PasswordSet"] = PASSWORD_SET
    data: PasswordSet


class TripFirstSharedV1(AccessEventV1):
    type: Literal["TripFirstShared"] = TRIP_FIRST_SHARED
    data: TripFirstShared


class TripSharedV1(AccessEventV1):
    type: Literal["TripShared"] = TRIP_SHARED
    data: TripShared


# Every typed envelope, told apart by `type`: what the relay publishes (the AsyncAPI
# document shows it). A new event type is a payload model, an envelope and a line here.
KnownAccessEventV1 = Annotated[
    WorkspaceCreatedV1
    | WorkspaceSettingsChangedV1
    | AccountCreatedV1
    | AccountActivatedV1
    | InviteSentV1
    | TokenClaimedV1
    | InviteResentV1
    | InviteRevokedV1
    | InvitationVoidedV1
    | AccessDisabledV1
    | AccessReenabledV1
    | PasswordResetRequestedV1
    | MagicLinkRequestedV1
    | SignInCodeIssuedV1
    | VerificationFailedV1
    | VerificationLockedOutV1
    | SignedInV1
    | PasswordSetV1
    | TripFirstSharedV1
    | TripSharedV1,
    Field(discriminator="type"),
]

# Event type → its typed envelope, and → its payload model.
ENVELOPES: dict[str, type[AccessEventV1]] = {
    cls.model_fields["type"].default: cls for cls in get_args(get_args(KnownAccessEventV1)[0])
}
PAYLOADS: dict[str, type[BaseModel]] = {name: cls.model_fields["data"].annotation for name, cls in ENVELOPES.items()}


def parse_access_event(raw: bytes | str | dict[str, Any]) -> AccessEventV1:
    """The typed envelope for a known type (its `data` validated), the plain one otherwise.

    Raises pydantic's ValidationError for a message that is not a v1 access event, or a
    known type whose payload does not match its model: both are for the dead-letter topic.
    """
    generic = (
        AccessEventV1.model_validate(raw) if isinstance(raw, dict) else AccessEventV1.model_validate_json(raw)
    )
    typed = ENVELOPES.get(generic.type)
    if typed is None:
        return generic
    return typed.model_validate(generic.model_dump(mode="python"))
