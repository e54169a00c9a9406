"""`POST /v1/workspaces/{ws}/invitations/preview`: what an invite would send; sends and stores nothing.

The email (and the SMS, when the invite goes by SMS) is rendered by the functions the
notifier's `messages_for` renders with (services/messages `render_invite`,
`render_invite_sms`), from the same `InviteSent` contract the notifier receives, built as
the command would build it from the workspace's current settings: a first invite for a new
contact, the resend for a pending account, the reactivation for a disabled one. So the
preview is the message byte for byte except two things only sending can fix: the link
(the real shape, `{PUBLIC_BASE_URL}/portal/{ws}/claim/{token}`, with a token that can
never verify: it answers 410 like any dead link) and the expiry, counted from now.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Path

from contracts.access import InviteSent, Sender
from services.common import tokens
from services.common.problems import BODY_ERRORS, STAFF_AUTH_ERRORS, problem_responses
from services.invite_service.api.deps import Access, Settings, StaffWriter
from services.invite_service.api.schemas import InvitationIn, PreviewOut
from services.invite_service.api.staff.invite_input import to_command
from services.invite_service.domain import ids
from services.invite_service.domain.invitation import inviter_of
from services.invite_service.domain.errors import AccountNotFound
from services.messages import render_invite, render_invite_sms

router = APIRouter()

# Not a token: it fails parsing before any key is involved, so the link can never claim anything.
SAMPLE_TOKEN = "preview.not-a-valid-link"
_WHAT_HAPPENS = {
    None: "An invite would create the account and send this email.",
    "pending": "The account is pending: a resend would send this email with a fresh link.",
    "active": "The account is active: an invite is refused (duplicate_email) and nothing is sent;"
    " a password reset is the action that applies.",
    "disabled": "The account is disabled: an invite is refused (duplicate_email); reactivate sends this email.",
}
# What the action that would send is recorded as (InviteSent.method): the wording follows it.
_METHOD = {None: "manual", "pending": "resend", "disabled": "reactivate"}


@router.post(
    "/preview",
    response_model=PreviewOut,
    summary="Preview what an invite would send; sends and stores nothing",
    responses=problem_responses({
        **STAFF_AUTH_ERRORS,
        **BODY_ERRORS,
        403: "Portal off (`portal_disabled`), plan below Pro (`plan_required`), or a read-only role (`forbidden_role`)",
        422: "As an invite: `email_required`, `invalid_email`, `invalid_phone`, `unknown_role`, `validation_error`",
    }),
)
async def preview_invite(
    body: InvitationIn, staff: StaffWriter, access: Access, settings: Settings, ws: str = Path()
) -> PreviewOut:
    command = to_command(body)
    workspace = await asyncio.to_thread(access.get_workspace, ws)  # current settings, not the invite cache
    workspace.check_can_invite(command.role)
    account_id = ids.account_id(ws, command.email)
    try:
        account, previous = await asyncio.to_thread(access.load_account, ws, account_id)
    except AccountNotFound:
        account = previous = None
    status = account.status if account is not None else None
    if account is None or previous is None:
        to, name, channels, phone = command.address or command.email, command.name, command.channels, command.phone
    else:  # a resend or reactivation goes where the last invitation went (lifecycle._fresh_invitation)
        to, name, channels, phone = previous.email, account.name, previous.channels, account.phone
    invite = InviteSent(
        workspace=ws,
        account_id=account_id,
        email=to,
        name=name,
        nonce="preview",
        expires_at=datetime.now(UTC) + timedelta(hours=workspace.settings["invite_ttl_hours"]),
        channels=list(channels),
        method=_METHOD.get(status, "manual"),
        sender=Sender.model_validate(workspace.sender),
        phone=phone,
        **inviter_of(staff.actor),
    )
    link = tokens.claim_link(settings.public_base_url, ws, SAMPLE_TOKEN)
    rendered = render_invite(invite, link)
    sms = render_invite_sms(invite, link) if "sms" in invite.channels and invite.phone else None
    return PreviewOut(
        kind="invite" if account is None else "resend",
        account_id=account_id,
        account_status=status,
        would_send=status in (None, "pending"),
        what_happens=_WHAT_HAPPENS.get(status, f"The account is {status}."),
        recipient=invite.email,
        channels=invite.channels,
        from_name=rendered.from_name,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        reply_to=rendered.reply_to,
        sms=sms,
        link=link,
        expires_at=invite.expires_at,
    )
