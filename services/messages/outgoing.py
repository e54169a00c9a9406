"""What to send for an access event: every message, rendered, with where it goes.

The notifier asks `messages_for(event, ...)` and sends what comes back; the staff API's
preview renders through the same functions (render_invite & co.), so a preview is what is
sent. Links and codes are derived here from the event's nonce with the secret key
(services/common/tokens.py) and exist only in the rendered message: never in an event, a
log or a Kafka message.

Event type → messages:
    InviteSent              invite (email and/or sms); auto_on_share also team_auto_invite_sent
    PasswordResetRequested  password_reset
    MagicLinkRequested      magic_link
    SignInCodeIssued        sign_in_code by email (when asked) and by sms (when a phone is on it)
    AccountActivated        team_invitation_accepted (when the caller knows the team address)
    VerificationLockedOut   team_locked_out
    anything else           nothing
A team message goes only where a team address is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Literal
from uuid import UUID

from pydantic import BaseModel

from contracts.access import (
    ACCOUNT_ACTIVATED,
    INVITE_SENT,
    MAGIC_LINK_REQUESTED,
    PASSWORD_RESET_REQUESTED,
    PAYLOADS,
    SIGN_IN_CODE_ISSUED,
    VERIFICATION_LOCKED_OUT,
    AccessEventV1,
    AccountActivated,
    InviteSent,
    MagicLinkRequested,
    PasswordResetRequested,
    Sender,
    SignInCodeIssued,
    VerificationLockedOut,
)
from services.common import tokens
from services.messages import team
from services.messages.branding import safe_branding
from services.messages.invite import render_invite, render_invite_sms
from services.messages.password_reset import render_password_reset
from services.messages.rendering import RenderedEmail
from services.messages.sign_in import render_magic_link, render_sign_in_code, render_sign_in_code_sms

Channel = Literal["email", "sms"]


@dataclass(frozen=True)
class OutgoingMessage:
    message: str  # the template set: "invite", "password_reset", ..., "team_delivery_failed"
    channel: Channel
    audience: Literal["client", "team"]
    to: str  # email address as typed, or E.164 phone for sms
    email: RenderedEmail | None  # for channel email: subject, html, text, from_name, reply_to
    sms: str | None  # for channel sms: the body (one GSM-7 segment where possible)
    staff_id: str | None  # manual invites only: the inviting staff member (Gmail may send it)
    slot: str  # unique among one event's messages, e.g. "client:email"
    expires_at: datetime | None  # a link/code that expired before sending is not sent


def messages_for(
    event: AccessEventV1, *, secret_key: bytes, public_base_url: str, team_notify_email: str | None = None
) -> list[OutgoingMessage]:
    """Every message `event` causes, rendered. `team_notify_email` is the workspace's team
    address for events that carry no sender (AccountActivated); otherwise the sender's is used.
    Raises pydantic's ValidationError when a known type's payload does not match its contract."""
    build = _BUILDERS.get(event.type)
    if build is None:
        return []
    data = event.data if isinstance(event.data, BaseModel) else PAYLOADS[event.type].model_validate(event.data)
    return build(event, data, _Keys(secret_key, public_base_url), team_notify_email)


@dataclass(frozen=True)
class _Keys:
    secret_key: bytes
    public_base_url: str


def _email(message: str, audience: Literal["client", "team"], to: str, rendered: RenderedEmail, *,
           slot: str, expires_at: datetime | None, staff_id: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(message=message, channel="email", audience=audience, to=to, email=rendered, sms=None,
                           staff_id=staff_id, slot=slot, expires_at=expires_at)


def _sms(message: str, to: str, body: str, *, expires_at: datetime | None,
         staff_id: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(message=message, channel="sms", audience="client", to=to, email=None, sms=body,
                           staff_id=staff_id, slot="client:sms", expires_at=expires_at)


def _team_address(sender: Sender | None, given: str | None) -> str | None:
    return (sender.team_notify_email if sender is not None else None) or given


def _invite(event: AccessEventV1, invite: InviteSent, keys: _Keys, team_email: str | None) -> list[OutgoingMessage]:
    token = tokens.make_token(keys.secret_key, tokens.CLAIM, event.aggregate_id, invite.nonce)
    link = tokens.claim_link(keys.public_base_url, invite.workspace, token)
    staff_id = _inviting_staff(event, invite)
    out: list[OutgoingMessage] = []
    channels = dict.fromkeys(invite.channels)
    if "email" in channels:
        out.append(_email("invite", "client", invite.email, render_invite(invite, link), slot="client:email",
                          expires_at=invite.expires_at, staff_id=staff_id))
    if "sms" in channels and invite.phone:
        out.append(_sms("invite", invite.phone, render_invite_sms(invite, link), expires_at=invite.expires_at,
                        staff_id=staff_id))
    address = _team_address(invite.sender, team_email)
    if invite.method == "auto_on_share" and address:
        rendered = team.render_auto_invite_sent(
            safe_branding(invite.sender), team_address=address, email=invite.email, name=invite.name,
            expires_at=invite.expires_at, reason=event.actor.reason,
        )
        out.append(_email("team_auto_invite_sent", "team", address, rendered, slot="team:email", expires_at=None))
    return out


def _inviting_staff(event: AccessEventV1, invite: InviteSent) -> str | None:
    """The staff member an invite goes out as (through their Gmail, if connected): whoever
    invited, resent or reactivated it; none for an auto-invite, which the workspace sends."""
    if invite.method == "auto_on_share":
        return None
    if invite.inviter_staff_id:
        return invite.inviter_staff_id
    return event.actor.id if event.actor.kind == "staff" else None


def _password_reset(event: AccessEventV1, reset: PasswordResetRequested, keys: _Keys,
                    team_email: str | None) -> list[OutgoingMessage]:
    token = tokens.make_token(keys.secret_key, tokens.RESET, _account(event), reset.nonce)
    link = tokens.reset_link(keys.public_base_url, event.workspace, token)
    return [_email("password_reset", "client", reset.email, render_password_reset(reset, link),
                   slot="client:email", expires_at=reset.expires_at)]


def _magic_link(event: AccessEventV1, request: MagicLinkRequested, keys: _Keys,
                team_email: str | None) -> list[OutgoingMessage]:
    token = tokens.make_token(keys.secret_key, tokens.MAGIC, _account(event), request.nonce)
    link = tokens.magic_link(keys.public_base_url, event.workspace, token)
    rendered = render_magic_link(request, link, issued_at=event.occurred_at)
    return [_email("magic_link", "client", request.email, rendered, slot="client:email",
                   expires_at=request.expires_at)]


def _sign_in_code(event: AccessEventV1, issued: SignInCodeIssued, keys: _Keys,
                  team_email: str | None) -> list[OutgoingMessage]:
    code = tokens.sign_in_code(keys.secret_key, _account(event), issued.nonce)
    out: list[OutgoingMessage] = []
    if "email" in issued.channels:
        rendered = render_sign_in_code(issued, code, issued_at=event.occurred_at)
        out.append(_email("sign_in_code", "client", issued.email, rendered, slot="client:email",
                          expires_at=issued.expires_at))
    if issued.phone:
        body = render_sign_in_code_sms(issued, code, issued_at=event.occurred_at)
        out.append(_sms("sign_in_code", issued.phone, body, expires_at=issued.expires_at))
    return out


def _account_activated(event: AccessEventV1, activated: AccountActivated, keys: _Keys,
                       team_email: str | None) -> list[OutgoingMessage]:
    if not team_email:
        return []
    rendered = team.render_invitation_accepted(
        team.neutral_branding(activated.workspace_name or event.workspace), team_address=team_email, email=activated.email,
        name=activated.name, at=event.occurred_at,
    )
    return [_email("team_invitation_accepted", "team", team_email, rendered, slot="team:email", expires_at=None)]


def _locked_out(event: AccessEventV1, locked: VerificationLockedOut, keys: _Keys,
                team_email: str | None) -> list[OutgoingMessage]:
    address = _team_address(locked.sender, team_email)
    if not address:
        return []
    rendered = team.render_locked_out(
        safe_branding(locked.sender), team_address=address, email=locked.email, name=locked.name,
        method=locked.method, until=locked.until, ip=locked.ip,
    )
    return [_email("team_locked_out", "team", address, rendered, slot="team:email", expires_at=None)]


def _account(event: AccessEventV1) -> UUID:
    # Reset, magic-link and code tokens are over the account; its events carry its id.
    return event.account_id or event.aggregate_id


_BUILDERS: dict[str, Callable[..., list[OutgoingMessage]]] = {
    INVITE_SENT: _invite,
    PASSWORD_RESET_REQUESTED: _password_reset,
    MAGIC_LINK_REQUESTED: _magic_link,
    SIGN_IN_CODE_ISSUED: _sign_in_code,
    ACCOUNT_ACTIVATED: _account_activated,
    VERIFICATION_LOCKED_OUT: _locked_out,
}


def team_delivery_failed(
    *,
    team_notify_email: str,
    reason: str | None,
    abandoned: bool,
    attempts: int,
    failed: OutgoingMessage | None = None,
    message: str | None = None,
    channel: Channel | None = None,
    recipient: str | None = None,
    slot: str | None = None,
    sender: Sender | None = None,
    workspace: str | None = None,
    name: str | None = None,
) -> OutgoingMessage:
    """The team's notice that a delivery was abandoned after its last attempt (`abandoned`)
    or refused for good. The delivery is `failed` (the OutgoingMessage), or its `message`,
    `channel`, `recipient` and `slot` when the caller kept only those. The notice's slot is
    `team:failed:<slot>`, so it is sent once per failed delivery of the same event. Branded
    from `sender` (the event's) when there is one, else by the workspace slug."""
    if failed is not None:
        message, channel, recipient, slot = failed.message, failed.channel, failed.to, failed.slot
    if message is None or channel is None or recipient is None or slot is None:
        raise TypeError("team_delivery_failed needs `failed` or message, channel, recipient and slot")
    branding = safe_branding(sender) if sender is not None else team.neutral_branding(workspace or "")
    rendered = team.render_delivery_failed(
        branding, team_address=team_notify_email, message=message, channel=channel,
        recipient=recipient, name=name, reason=reason, abandoned=abandoned, attempts=attempts,
    )
    return _email("team_delivery_failed", "team", team_notify_email, rendered, slot=f"team:failed:{slot}",
                  expires_at=None)
