"""The SMTP fast path's bytes read back as the same email the standard library would build."""

from __future__ import annotations

import email
import email.policy
import uuid

from services.notifier.mime import fits, mime_bytes
from services.notifier.providers.base import Email, message_id_for, mime_message


def _email(**changes) -> Email:
    fields = dict(to="ana@example.com", from_address="portal@pride.example", from_name="Pride Trävelers, Inc.",
                  reply_to="desk@pride.example", subject="Pat at Pride Trävelers invited you — welcome",
                  html="<p>Olá <b>Ana</b> 🎉</p>", text="Olá Ana 🎉\nline two\n" + "x" * 200,
                  delivery_id=uuid.uuid4())
    return Email(**{**fields, **changes})


def _parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def test_fast_bytes_read_back_like_the_standard_librarys_message():
    mail = _email()
    message_id = message_id_for(mail.delivery_id, mail.from_address)
    data = mime_bytes(mail, message_id)
    fast, slow = _parse(data), _parse(mime_message(mail).as_bytes())
    for header in ("From", "To", "Reply-To", "Subject", "Message-ID"):
        assert str(fast[header]) == str(slow[header]), header
    assert message_id == str(slow["Message-ID"])
    assert fast.get_content_type() == "multipart/alternative"
    for subtype in ("plain", "html"):
        assert fast.get_body((subtype,)).get_content() == slow.get_body((subtype,)).get_content()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_a_newline_in_a_header_value_cannot_start_a_header():
    data = mime_bytes(_email(subject="Hi\r\nBcc: evil@example.com", from_name="A\nB"), "<x@y>")
    message = _parse(data)
    assert message["Bcc"] is None and "Bcc: evil" in str(message["Subject"])


def test_non_ascii_addresses_take_the_standard_librarys_path():
    assert fits(_email()) and not fits(_email(to="anä@example.com"))
