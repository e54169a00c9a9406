"""The SMTP provider against a real SMTP server: kept connections, and what happens when
the server drops one or is not there at all."""

from __future__ import annotations

import uuid

import pytest
from aiosmtpd.controller import Controller

from deploy import embedded
from services.common.settings import NotifierSettings
from services.messages import RenderedEmail
from services.notifier.smtp import SEND_ERRORS, SmtpSender
from tests.helpers import SmtpRecorder

EMAIL = RenderedEmail(subject="You are invited", html="<p>Hello</p>", text="Hello")


class ConnectionsSeen(SmtpRecorder):
    """Also remembers the client end of each connection a message came over."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[tuple[str, int]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def sender_for(port: int) -> SmtpSender:
    return SmtpSender(NotifierSettings(
        database_url="postgresql://unused@localhost/unused", kafka_bootstrap_servers="unused:9092",
        porchlight_secret_key="s" * 40, smtp_host="127.0.0.1", smtp_port=port,
    ))


async def send(sender: SmtpSender, to: str) -> str:
    return await sender.send(EMAIL, to=to, from_name="Pride Travelers", delivery_id=uuid.uuid4())


async def test_messages_share_a_kept_connection():
    seen = ConnectionsSeen()
    controller = Controller(seen, hostname="127.0.0.1", port=embedded.free_port())
    controller.start()
    sender = sender_for(controller.port)
    try:
        for i in range(3):
            await send(sender, f"guest{i}@example.com")
        assert [m.rcpt_tos for m in seen.received] == [[f"guest{i}@example.com"] for i in range(3)]
        assert len(set(seen.peers)) == 1
    finally:
        await sender.close()
        controller.stop()


async def test_a_connection_the_server_dropped_is_replaced_and_the_message_still_sent():
    port = embedded.free_port()
    first, second = ConnectionsSeen(), ConnectionsSeen()
    controller = Controller(first, hostname="127.0.0.1", port=port)
    controller.start()
    sender = sender_for(port)
    try:
        await send(sender, "before@example.com")
        controller.stop()  # the server goes away with our kept connection, and comes back
        controller = Controller(second, hostname="127.0.0.1", port=port)
        controller.start()
        await send(sender, "after@example.com")
        assert [m.rcpt_tos for m in second.received] == [["after@example.com"]]
    finally:
        await sender.close()
        controller.stop()


async def test_no_server_is_a_send_error_for_the_ledger_to_record():
    sender = sender_for(embedded.free_port())
    with pytest.raises(SEND_ERRORS):
        await send(sender, "nobody@example.com")
