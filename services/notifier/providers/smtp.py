"""The SMTP provider (self-hosted relays and development): kept connections, STARTTLS when
the relay offers it, a Message-ID derived from the delivery id.

Replies decide: a 5xx reply is the relay's final word on this message (permanent), a 4xx
reply, a dropped connection or a timeout is worth another try later (transient).
"""

from __future__ import annotations

import time
from email.message import EmailMessage

import aiosmtplib

from services.notifier.providers.base import Email, SendResult, message_id_for, mime_bytes, mime_message, short_reason

NAME = "smtp"

# What a kept connection that the relay closed meanwhile looks like on the next send.
_STALE = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, ConnectionError)


class SmtpProvider:
    """Sends through the relay in `settings`, keeping connections open between messages.

    A fresh connection per message spends half of each send on connect, EHLO and QUIT
    (measured against aiosmtpd: 4.0 ms a message, 2.0 ms on a kept connection). Each
    concurrent send takes an idle connection or opens one; a connection that failed in
    any way is closed, never reused, and one idle longer than IDLE_SECONDS is replaced
    before relays time it out. A kept connection the relay has closed meanwhile is
    noticed on the next send, which then goes once more over a fresh connection.
    """

    name = NAME
    IDLE_SECONDS = 30.0

    def __init__(self, settings) -> None:  # NotifierSettings
        self._settings = settings
        self._idle: list[tuple[float, aiosmtplib.SMTP]] = []  # (last used, connection), newest last

    async def send(self, email: Email) -> SendResult:
        data = mime_bytes(email)
        # Written directly where it can be (a tenth of the CPU); otherwise the standard library's
        # message, which aiosmtplib sends with SMTPUTF8 for addresses that are not ASCII.
        message = (email.from_address, email.to, data) if data is not None else mime_message(email)
        try:
            await self._send(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient refused; we send to one
            codes = [r.code for r in exc.recipients]
            reasons = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            status = "permanent" if codes and all(c >= 500 for c in codes) else "transient"
            return SendResult(status, NAME, short_reason(f"recipient refused: {reasons}"))
        except aiosmtplib.SMTPResponseException as exc:
            status = "permanent" if exc.code >= 500 else "transient"
            return SendResult(status, NAME, short_reason(f"{exc.code} {exc.message}"))
        except (aiosmtplib.SMTPException, OSError) as exc:  # connection, TLS, timeout, no STARTTLS
            return SendResult("transient", NAME, short_reason(f"{type(exc).__name__}: {exc}"))
        return SendResult("sent", NAME, provider_message_id=message_id_for(email.delivery_id, email.from_address))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, client in idle:
            await _close(client, polite=True)

    async def _send(self, message: tuple[str, str, bytes] | EmailMessage) -> None:
        client, reused = await self._take()
        try:
            await _transmit(client, message)
        except _STALE:
            await _close(client)
            if not reused:
                raise
            client = await self._connect()  # the relay dropped the kept connection: once more, fresh
            try:
                await _transmit(client, message)
            except BaseException:
                await _close(client)
                raise
        except BaseException:
            await _close(client)
            raise
        self._idle.append((time.monotonic(), client))

    async def _take(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            last_used, client = self._idle.pop()
            if time.monotonic() - last_used < self.IDLE_SECONDS and client.is_connected:
                return client, True
            await _close(client, polite=True)
        return await self._connect(), False

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            # None: upgrade when the relay offers STARTTLS; True: refuse a relay that does not; False: never.
            start_tls=s.smtp_starttls,
            cert_bundle=s.smtp_ca_file,
            timeout=s.smtp_timeout_seconds,
        )
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        return client


async def _transmit(client: aiosmtplib.SMTP, message: tuple[str, str, bytes] | EmailMessage) -> None:
    if isinstance(message, EmailMessage):
        await client.send_message(message)
    else:
        sender, recipient, data = message
        await client.sendmail(sender, [recipient], data)


async def _close(client: aiosmtplib.SMTP, polite: bool = False) -> None:
    """QUIT where the connection is healthy (an idle one); otherwise just drop it."""
    if polite and client.is_connected:
        try:
            await client.quit()
            return
        except (aiosmtplib.SMTPException, OSError):
            pass
    client.close()
