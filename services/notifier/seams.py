"""What the notifier core uses from the messages and providers packages, in one place.

INTERIM: until services/messages/outgoing.py (what to send for an event) and
services/notifier/providers (how to send) are merged, this module stands in for them with
the invite email over SMTP only, with the same names and shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import aiosmtplib

from contracts.access import INVITE_SENT, AccessEventV1, InviteSent
from services.common import tokens
from services.messages import RenderedEmail, render_invite
from services.notifier.smtp import SmtpSender


@dataclass(frozen=True)
class OutgoingMessage:
    message: str
    channel: Literal["email", "sms"]
    audience: Literal["client", "team"]
    to: str
    email: RenderedEmail | None
    sms: str | None
    staff_id: str | None
    slot: str
    expires_at: datetime | None


def messages_for(
    event: AccessEventV1, *, secret_key: bytes, public_base_url: str, team_notify_email: str | None = None
) -> list[OutgoingMessage]:
    if event.type != INVITE_SENT:
        return []
    invite: InviteSent = event.data
    token = tokens.make_token(secret_key, tokens.CLAIM, event.aggregate_id, invite.nonce)
    rendered = render_invite(invite, tokens.claim_link(public_base_url, invite.workspace, token))
    return [
        OutgoingMessage("invite", channel, "client", invite.email if channel == "email" else (invite.phone or ""),
                        rendered if channel == "email" else None, None, None, f"client:{channel}", invite.expires_at)
        for channel in dict.fromkeys(invite.channels)
    ]


def team_delivery_failed(*, team_notify_email: str, reason: str | None, abandoned: bool, attempts: int,
                         message: str | None = None, channel: str | None = None, recipient: str | None = None,
                         slot: str | None = None, workspace: str | None = None, **_) -> OutgoingMessage:
    what = "could not be delivered after {attempts} attempts" if abandoned else "was refused"
    text = f"The {message} {channel} to {recipient} {what.format(attempts=attempts)}: {reason}\n"
    rendered = RenderedEmail(subject=f"A {message} could not be delivered", html=f"<p>{text}</p>", text=text,
                             from_name=workspace or "")
    return OutgoingMessage("team_delivery_failed", "email", "team", team_notify_email, rendered, None, None,
                           f"team:failed:{slot}", None)


@dataclass(frozen=True)
class Email:
    to: str
    from_address: str
    from_name: str
    reply_to: str | None
    subject: str
    html: str
    text: str
    delivery_id: UUID


@dataclass(frozen=True)
class Sms:
    to: str
    body: str
    delivery_id: UUID


@dataclass(frozen=True)
class SendResult:
    status: Literal["sent", "transient", "permanent"]
    provider: str
    reason: str | None = None
    provider_message_id: str | None = None
    inactive_recipient: bool = False
    fell_back_from: str | None = None


class _SmtpProvider:
    name = "smtp"

    def __init__(self, settings) -> None:
        self._sender = SmtpSender(settings)

    async def send(self, email: Email) -> SendResult:
        rendered = RenderedEmail(email.subject, email.html, email.text, email.from_name)
        try:
            message_id = await self._sender.send(rendered, to=email.to, from_name=email.from_name,
                                                 delivery_id=email.delivery_id)
        except aiosmtplib.SMTPResponseException as exc:
            status = "permanent" if exc.code >= 500 else "transient"
            return SendResult(status, self.name, f"{exc.code} {exc.message}"[:500])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            code = min(e.code for e in exc.recipients) if exc.recipients else 550
            return SendResult("permanent" if code >= 500 else "transient", self.name, str(exc)[:500])
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendResult("transient", self.name, f"{type(exc).__name__}: {exc}"[:500])
        return SendResult("sent", self.name, provider_message_id=message_id)

    async def close(self) -> None:
        await self._sender.close()


class GmailRouter:
    name = "gmail"

    def __init__(self, *, transactional, **_) -> None:
        self.transactional = transactional

    @classmethod
    def from_settings(cls, settings, pool, transactional) -> GmailRouter:
        return cls(transactional=transactional)

    async def send(self, email: Email, *, workspace: str, staff_id: str | None) -> SendResult:
        return await self.transactional.send(email)

    async def close(self) -> None:
        pass


def email_provider(settings) -> _SmtpProvider:
    return _SmtpProvider(settings)


def sms_provider(settings) -> None:
    return None
