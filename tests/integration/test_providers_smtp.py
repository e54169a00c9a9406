"""The SMTP provider against real aiosmtpd servers: the message it builds, kept connections,
STARTTLS when the relay offers it, and relay replies mapped to permanent or transient."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from deploy import embedded
from services.common.settings import NotifierSettings
from services.notifier.providers import Email, SmtpProvider, email_provider
from tests.helpers import SmtpRecorder


def an_email(to: str = "ana@example.com") -> Email:
    return Email(to=to, from_address="portal@pride.example", from_name="Pride Travelers", reply_to="desk@pride.example",
                 subject="Pride Travelers invited you", html="<p>Hello <b>Ana</b></p>", text="Hello Ana",
                 delivery_id=uuid.uuid4())


def provider_for(port: int, **settings) -> SmtpProvider:
    provider = email_provider(NotifierSettings(
        database_url="postgresql://unused@localhost/unused", kafka_bootstrap_servers="unused:9092",
        porchlight_secret_key="s" * 40, smtp_host="127.0.0.1", smtp_port=port, **settings,
    ))
    assert isinstance(provider, SmtpProvider)
    return provider


class Relay(SmtpRecorder):
    """Records what it accepts, and where and how each message came: client end, TLS or not."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        super().__init__()
        self.rcpt_reply, self.data_reply = rcpt_reply, data_reply
        self.sessions: list[tuple[tuple, bool]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_reply:
            return self.data_reply
        self.sessions.append((session.peer, session.ssl is not None))
        return await super().handle_DATA(server, session, envelope)


def serve(relay: Relay, **options) -> Controller:
    controller = Controller(relay, hostname="127.0.0.1", port=embedded.free_port(), **options)
    controller.start()
    return controller


async def test_the_message_carries_both_parts_reply_to_and_a_message_id_from_the_delivery():
    relay = Relay()
    controller = serve(relay)
    provider = provider_for(controller.port)
    email = an_email()
    try:
        result = await provider.send(email)
    finally:
        await provider.close()
        controller.stop()
    assert result.status == "sent" and result.provider == "smtp"
    assert result.provider_message_id == f"<{email.delivery_id}@pride.example>"
    [mail] = relay.received
    assert mail.mail_from == "portal@pride.example" and mail.rcpt_tos == ["ana@example.com"]
    assert mail.message["From"] == "Pride Travelers <portal@pride.example>"
    assert mail.message["Reply-To"] == "desk@pride.example"
    assert mail.message["Message-ID"] == result.provider_message_id
    assert mail.part("plain").strip() == "Hello Ana" and "<b>Ana</b>" in mail.part("html")


async def test_messages_share_a_kept_connection():
    relay = Relay()
    controller = serve(relay)
    provider = provider_for(controller.port)
    try:
        for i in range(3):
            assert (await provider.send(an_email(f"guest{i}@example.com"))).status == "sent"
    finally:
        await provider.close()
        controller.stop()
    assert len({peer for peer, _ in relay.sessions}) == 1


async def test_a_kept_connection_the_relay_dropped_is_replaced_and_the_message_still_sent():
    first, second = Relay(), Relay()
    controller = serve(first)
    port = controller.port
    provider = provider_for(port)
    try:
        assert (await provider.send(an_email("before@example.com"))).status == "sent"
        controller.stop()  # the relay goes away with our kept connection, and comes back
        controller = Controller(second, hostname="127.0.0.1", port=port)
        controller.start()
        assert (await provider.send(an_email("after@example.com"))).status == "sent"
    finally:
        await provider.close()
        controller.stop()
    assert [m.rcpt_tos for m in second.received] == [["after@example.com"]]


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "relay.pem", directory / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_starttls_is_used_when_the_relay_offers_it(tmp_path):
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    relay = Relay()
    # require_starttls: the relay refuses MAIL before STARTTLS, so a sent message went encrypted.
    controller = serve(relay, tls_context=context, require_starttls=True)
    provider = provider_for(controller.port, smtp_ca_file=str(cert_file))  # SMTP_STARTTLS unset: when offered
    try:
        for _ in range(2):
            assert (await provider.send(an_email())).status == "sent"
    finally:
        await provider.close()
        controller.stop()
    assert [tls for _, tls in relay.sessions] == [True, True]
    assert len({peer for peer, _ in relay.sessions}) == 1  # the TLS connection is kept too


async def test_a_relay_certificate_that_does_not_verify_is_transient_and_nothing_goes_in_clear(tmp_path):
    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    relay = Relay()
    controller = serve(relay, tls_context=context)
    provider = provider_for(controller.port)  # the system's CAs: the self-signed certificate fails
    try:
        result = await provider.send(an_email())
    finally:
        await provider.close()
        controller.stop()
    assert result.status == "transient" and "certificate" in result.reason.lower()
    assert relay.received == []


async def test_starttls_required_but_not_offered_is_transient():
    relay = Relay()
    controller = serve(relay)
    provider = provider_for(controller.port, smtp_starttls=True)
    try:
        result = await provider.send(an_email())
    finally:
        await provider.close()
        controller.stop()
    assert result.status == "transient" and relay.received == []


@pytest.mark.parametrize(("replies", "status", "reason"), [
    ({"rcpt_reply": "550 5.1.1 No such user here"}, "permanent", "550 5.1.1 No such user here"),
    ({"rcpt_reply": "450 4.2.1 Mailbox busy"}, "transient", "450 4.2.1 Mailbox busy"),
    ({"data_reply": "554 5.7.1 Message rejected as spam"}, "permanent", "554 5.7.1 Message rejected as spam"),
    ({"data_reply": "451 4.3.0 Try again later"}, "transient", "451 4.3.0 Try again later"),
])
async def test_relay_replies_decide_permanent_or_transient(replies, status, reason):
    relay = Relay(**replies)
    controller = serve(relay)
    provider = provider_for(controller.port)
    try:
        result = await provider.send(an_email())
        assert (result.status, result.provider) == (status, "smtp") and reason in result.reason
        relay.rcpt_reply = relay.data_reply = None  # a failed connection is not reused: the next send works
        assert (await provider.send(an_email())).status == "sent"
    finally:
        await provider.close()
        controller.stop()


async def test_no_relay_is_transient():
    provider = provider_for(embedded.free_port())
    try:
        result = await provider.send(an_email())
    finally:
        await provider.close()
    assert result.status == "transient" and result.provider == "smtp"


async def test_an_address_that_is_not_ascii_goes_with_smtputf8():
    relay = Relay()
    controller = serve(relay, enable_SMTPUTF8=True)
    provider = provider_for(controller.port)
    try:
        result = await provider.send(an_email("zoë@exämple.com"))
    finally:
        await provider.close()
        controller.stop()
    assert result.status == "sent"
    [mail] = relay.received
    assert mail.rcpt_tos == ["zoë@exämple.com"] and mail.message["To"] == "zoë@exämple.com"
    assert mail.part("plain").strip() == "Hello Ana"
