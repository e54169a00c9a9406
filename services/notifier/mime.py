"""An email's RFC 5322 bytes, built directly: the SMTP provider's per-message hot path.

The standard library's EmailMessage (policy `default`) parses back every header it is given
and refolds it when flattened; for one invite that cost several times the SMTP exchange
itself (bench/notifier_cpu.py). What we send is always the same shape (multipart/alternative
of UTF-8 text and HTML, a handful of headers), so it is written out here: headers encoded as
RFC 2047 where not ASCII, bodies in base64 (C code, 76-character lines). Mail that needs more
(non-ASCII addresses: SMTPUTF8) goes through EmailMessage as before (`fits`).
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from email.header import Header
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the providers import this module
    from services.notifier.providers.base import Email


def fits(email: Email) -> bool:
    """True when the fast path can write this email (ASCII addresses)."""
    return all(a.isascii() for a in (email.to, email.from_address, email.reply_to or ""))


def _line(value: str) -> str:
    # Rendering already makes subjects and names one line; a stray CR or LF must never start a header.
    return " ".join(value.split())


def _text(value: str) -> str:
    value = _line(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


def mime_bytes(email: Email, message_id: str) -> bytes:
    """The message, as an SMTP relay takes it (CRLF line ends, 7-bit)."""
    boundary = f"=={uuid.uuid4().hex}=="
    headers = [
        f"From: {formataddr((_line(email.from_name), email.from_address), charset='utf-8')}",
        f"To: {_line(email.to)}",
    ]
    if email.reply_to:
        headers.append(f"Reply-To: {_line(email.reply_to)}")
    headers += [
        f"Subject: {_text(email.subject)}",
        f"Message-ID: {message_id}",
        f"Date: {format_datetime(datetime.now(timezone.utc))}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    # Plain text first, HTML last: clients show the last alternative they understand.
    parts = []
    for subtype, body in (("plain", email.text), ("html", email.html)):
        body = body if body.endswith("\n") else body + "\n"  # as EmailMessage.set_content ends a part
        parts.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(body.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
        )
    data = "\r\n".join(headers) + "\r\n\r\n" + "".join(parts) + f"--{boundary}--\r\n"
    return data.encode("ascii")
