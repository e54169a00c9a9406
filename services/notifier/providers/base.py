"""What every provider takes and answers: one rendered email or SMS in, one SendResult out.

Providers never raise for what a provider or the network did: each maps its own errors to
`transient` (try again later: the network, rate limits, the provider's own trouble) or
`permanent` (this message will never go: a refused address, an invalid request), with the
provider's reason for the delivery record. The ledger decides what to do with either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Literal, Protocol
from uuid import UUID

Status = Literal["sent", "transient", "permanent"]


@dataclass(frozen=True)
class Email:
    """One email, fully rendered."""

    to: str
    from_address: str
    from_name: str
    reply_to: str | None
    subject: str
    html: str
    text: str
    delivery_id: UUID  # Message-ID derives from it; Postmark's Metadata carries it


@dataclass(frozen=True)
class Sms:
    to: str  # E.164
    body: str
    delivery_id: UUID


@dataclass(frozen=True)
class SendResult:
    status: Status
    provider: str  # "smtp", "postmark", "gmail", "twilio"
    reason: str | None = None  # the provider's error, for the delivery record (never a secret)
    provider_message_id: str | None = None
    inactive_recipient: bool = False  # Postmark 406 / hard bounce: the ledger suppresses the address
    fell_back_from: str | None = None  # "gmail" when a Gmail 401/403 fell back to the transactional provider


class EmailProvider(Protocol):
    name: str

    async def send(self, email: Email) -> SendResult: ...  # never raises for provider errors

    async def close(self) -> None: ...


class SmsProvider(Protocol):
    name: str

    async def send(self, sms: Sms) -> SendResult: ...

    async def close(self) -> None: ...


def message_id_for(delivery_id: UUID, mail_from: str) -> str:
    """The same on every retry of a delivery, so mail systems that dedupe on Message-ID show
    one copy when a crash between the provider's acceptance and our record sends it twice."""
    domain = mail_from.rpartition("@")[2] or "porchlight.localhost"
    return f"<{delivery_id}@{domain}>"


def mime_message(email: Email) -> EmailMessage:
    """The RFC 5322 message SMTP relays and the Gmail API take: multipart/alternative."""
    message = EmailMessage()
    # The display name is the workspace's: the recipient knows the business, not Porchlight.
    message["From"] = formataddr((email.from_name, email.from_address))
    message["To"] = email.to
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    message["Subject"] = email.subject
    message["Message-ID"] = message_id_for(email.delivery_id, email.from_address)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    # Plain text first, HTML last: clients show the last alternative they understand.
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def short_reason(text: str, limit: int = 500) -> str:
    """A provider's error as the delivery record keeps it: one line, bounded."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
