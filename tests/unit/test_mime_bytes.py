"""The directly written RFC 5322 message reads, in a standard parser, exactly as the standard
library's own message for the same email does: headers, both parts, awkward content."""

from __future__ import annotations

import email
import email.policy
import uuid

import pytest

from services.notifier.providers.base import Email, mime_bytes, mime_message

TEXTS = [
    "Hello Ana,\n\nClick the link.\n",
    "no trailing newline",
    "Zoë's café — 👋 ünïcödé\n",
    ".a line starting with a dot\nFrom the start of a line\n..two dots\n",
    "trailing spaces   \ntabs\t\t\n= an equals sign =3D and =?utf-8?q?x?=\n",
    "windows\r\nline\r\nends\r\n",
    "a" * 5000 + "\n" + "b " * 3000,
    "",
]


def an_email(text: str = TEXTS[0], html: str = "<p>Hello</p>", **fields) -> Email:
    base = dict(to="ana@example.com", from_address="portal@pride.example", from_name="Pride Travelers",
                reply_to="desk@pride.example", subject="Pride Travelers invited you", delivery_id=uuid.uuid4())
    return Email(text=text, html=html, **{**base, **fields})


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


def same_message(mail: Email) -> None:
    data = mime_bytes(mail)
    assert data is not None
    assert data.isascii() and b"\n" not in data.replace(b"\r\n", b"")  # CRLF line ends only
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    # Both as they go over SMTP: CRLF line ends, in the headers and in the decoded text too.
    fast, reference = parse(data), parse(mime_message(mail).as_bytes(policy=email.policy.SMTP))
    for header in ("From", "To", "Reply-To", "Subject", "Message-ID"):
        if header == "Subject" and "=?" in mail.subject:
            # The standard library writes it as it is, and it reads back decoded as an encoded word.
            assert fast[header] == mail.subject
            continue
        assert fast[header] == reference[header], header
    assert fast.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in fast.iter_parts()] == ["text/plain", "text/html"]
    for subtype in ("plain", "html"):
        assert fast.get_body((subtype,)).get_content() == reference.get_body((subtype,)).get_content()


@pytest.mark.parametrize("text", TEXTS)
def test_bodies_read_back_as_the_standard_librarys_do(text):
    same_message(an_email(text, html=f"<html><body><p>{text}</p></body></html>"))


@pytest.mark.parametrize("fields", [
    {"subject": "Réservation confirmée pour votre voyage à Montréal avec Pride Travelers, et 👋 encore"},
    {"subject": "A subject that looks like =?utf-8?q?an_encoded_word?= but is not"},
    {"from_name": "Zoë at Pride Travelers"},
    {"from_name": 'Pat "the planner", Pride Travelers <ops>'},
    {"subject": "x" * 950},
    {"reply_to": None},
])
def test_headers_read_back_as_the_standard_librarys_do(fields):
    same_message(an_email(**fields))


def test_a_line_break_in_a_name_or_subject_starts_no_header_of_its_own():
    mail = an_email(subject="Hello\r\nBcc: victim@example.com", from_name="Pride\nX-Injected: yes")
    fast = parse(mime_bytes(mail))
    assert fast["Bcc"] is None and fast["X-Injected"] is None
    assert fast["Subject"] == "Hello Bcc: victim@example.com"
    same_message(mail)


def test_addresses_that_are_not_ascii_are_left_to_the_standard_library():
    mail = an_email(to="zoë@exämple.com")
    assert mime_bytes(mail) is None
    assert parse(mime_message(mail).as_bytes(policy=email.policy.SMTPUTF8))["To"] == "zoë@exämple.com"


def test_the_message_id_is_the_delivery_ids():
    mail = an_email()
    assert parse(mime_bytes(mail))["Message-ID"] == f"<{mail.delivery_id}@pride.example>"
