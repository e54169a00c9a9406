"""The SMTP provider: builds a multipart/alternative message and hands it to a relay.

The Message-ID is derived from the delivery id, so if a crash between the relay's
"250 OK" and our ledger commit makes us send again, the copy carries the same id and
mail systems that dedupe on Message-ID show it once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from uuid import UUID

import aiosmtplib

from services.common.settings import NotifierSettings
from services.notifier.rendering import RenderedEmail

PROVIDER = "smtp"

# Errors worth a retry: the relay refused or the connection failed. Anything else is a bug.
SEND_ERRORS = (aiosmtplib.SMTPException, OSError)


def message_id_for(delivery_id: UUID, mail_from: str) -> str:
    domain = mail_from.rpartition("@")[2] or "porchlight.localhost"
    return f"<{delivery_id}@{domain}>"


def build_message(
    rendered: RenderedEmail, *, to: str, from_name: str, mail_from: str, delivery_id: UUID
) -> EmailMessage:
    message = EmailMessage()
    # The display name is the workspace's: the recipient knows the business, not Porchlight.
    message["From"] = formataddr((from_name, mail_from))
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Message-ID"] = message_id_for(delivery_id, mail_from)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    # Plain text first, HTML last: clients show the last alternative they understand.
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


class SmtpSender:
    """Sends through the relay in `settings`; one connection per message (volumes are low)."""

    provider = PROVIDER

    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings

    async def send(self, rendered: RenderedEmail, *, to: str, from_name: str, delivery_id: UUID) -> str:
        """Send and return the Message-ID; raises one of SEND_ERRORS when the relay did not accept."""
        s = self._settings
        message = build_message(rendered, to=to, from_name=from_name, mail_from=s.mail_from, delivery_id=delivery_id)
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            # False, not None: aiosmtplib's None means "upgrade if offered", which is not a decision.
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_seconds,
        )
        return str(message["Message-ID"])
