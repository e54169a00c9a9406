"""A notifier that dies mid-send: its lease runs out, another sends the message once.

The first notifier is a real `porchlight notifier` process, killed (SIGKILL) while the SMTP
server holds its message; the second runs in this process, with a fresh consumer group (the
broker forgot the offsets, as after a restart), so it reads the event again at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from deploy.embedded import free_port
from services.notifier.ledger import delivery_id_for
from tests.helpers import SmtpRecorder, poll_until, unique
from tests.integration.test_notifier import invite_sent, notifier_settings, outcomes_for, publish, recording, running

pytestmark = pytest.mark.timeout(120)

LEASE_SECONDS = 6


class Stalling(SmtpRecorder):
    """Holds the first message to `address` until released, then refuses it (its sender is gone)."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.arrived_at: list[datetime] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        if self.address in envelope.rcpt_tos and not self.stalled.is_set():
            self.stalled.set()
            await asyncio.to_thread(self.release.wait, 60)  # held until the test lets it answer
            return "451 4.4.2 Too late"
        self.arrived_at.append(datetime.now(timezone.utc))
        return await super().handle_DATA(server, session, envelope)


async def test_a_notifier_killed_mid_send_leaves_a_lease_that_another_takes_once(
    base_env, pg_pool, kafka_bootstrap, topic_names
):
    ana = invite_sent(unique("ws"), f"{unique('ana')}@example.com")
    delivery_id = delivery_id_for(ana.event_id, "client:email")
    handler, port = Stalling(ana.data.email), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    env = {**os.environ, **base_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
           "NOTIFIER_GROUP_ID": unique("notifier"), "NOTIFIER_LEASE_SECONDS": str(LEASE_SECONDS),
           # The lease covers a send's whole timeout (Notifier.lease_for): keep both short here.
           "SMTP_TIMEOUT_SECONDS": str(LEASE_SECONDS * 2 / 3), "PROVIDER_TIMEOUT_SECONDS": str(LEASE_SECONDS * 2 / 3)}
    first = subprocess.Popen([str(Path(sys.executable).parent / "porchlight"), "notifier"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes:
            await publish(kafka_bootstrap, topic_names["access"], ana)
            await poll_until(lambda: _async(handler.stalled.is_set()), timeout=60, what="the first notifier's send")
            claimed = await pg_pool.fetchrow(
                "SELECT status, attempt, lease_owner, lease_until FROM notifier_deliveries WHERE delivery_id = $1",
                delivery_id)
            assert (claimed["status"], claimed["attempt"]) == ("sending", 1)
            assert f":{first.pid}:" in claimed["lease_owner"]
            first.send_signal(signal.SIGKILL)  # dies mid-send: nothing recorded, nothing acknowledged
            first.wait(10)
            handler.release.set()

            second = notifier_settings(base_env, port, notifier_retry_poll_seconds=0.05)
            async with running(second):
                [mail] = await poll_until(lambda: _async(handler.to(ana.data.email)), timeout=60,
                                          what="the invite, sent by the second notifier")
                sent = list(await poll_until(lambda: _async(outcomes_for(outcomes, ana)), what="the sent outcome"))
                # Delivered twice more (redelivery, re-publish): still once.
                await publish(kafka_bootstrap, topic_names["access"], ana, ana)
                await poll_until(lambda: _async(len(outcomes_for(outcomes, ana)) > len(sent)), what="a repeat")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        handler.release.set()
        controller.stop()
    assert len(handler.to(ana.data.email)) == 1
    # Nothing was sent while the dead notifier's lease still held the delivery.
    assert handler.arrived_at[0] >= claimed["lease_until"]
    row = await pg_pool.fetchrow(
        "SELECT status, attempt, lease_owner FROM notifier_deliveries WHERE delivery_id = $1", delivery_id)
    assert (row["status"], row["attempt"]) == ("sent", 2)
    assert f":{first.pid}:" not in row["lease_owner"]
    assert {(o["status"], o["attempt"]) for o in outcomes_for(outcomes, ana)} == {("sent", 2)}
    assert mail.message["Message-ID"] == f"<{delivery_id}@porchlight.localhost>"


async def _async(value):
    return value
