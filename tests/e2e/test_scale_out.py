"""Consumers scale by partitions: two notifier and two projector processes share their groups.

The real processes (`porchlight api`, `relay`, two `notifier`, two `projector`) against a
real SMTP server started here. Before the burst each consumer process holds some of the
topic's partitions (from each process's own log of its assignments). Half the invites go in;
once some of their emails have arrived, the SMTP server takes each further message but holds
its 250 (a provider slowing down), until every message both notifiers can have in flight is
held there (the ledger says which notifier claimed what); then one notifier and one projector
are stopped, the server answers the held messages, and the other half of the invites go in.
The survivors take over the stopped ones' partitions.

SIGTERM is a Kubernetes scale-down or rolling update: the stopping notifier finishes and
records what it was sending, so every email arrives exactly once. SIGKILL cannot be that
clean: what a notifier killed had handed to the SMTP server but not yet recorded in its
ledger is sent again once its lease runs out (at-least-once), with the same Message-ID, so a
receiver can drop the copy. None may be lost either way.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from deploy import embedded
from services.common.kafka import DEFAULT_PARTITIONS
from services.common.settings import NotifierSettings
from services.common.staff_auth import make_staff_token
from tests.conftest import STAFF_JWT_SECRET
from tests.helpers import SmtpRecorder, poll_until, unique

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

INVITES = 200  # half before the stop, half after
ARRIVED_BEFORE_HOLD = 10
CONCURRENT_REQUESTS = 16


class HeldAfter(SmtpRecorder):
    """Answers the first `count` messages at once; takes each later one but holds its 250 until
    `release()`. The burst is caught mid-way with both notifiers' sends in flight, however fast
    the machine; and a sender killed while held has had its message taken without hearing so,
    the window in which at-least-once delivery sends a message twice."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.held: set[str] = set()  # recipients whose 250 is being held
        self.controller: Controller | None = None
        self._released = asyncio.Event()  # waited on and set on the server's own loop

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        hold = len(self.received) >= self.count
        answer = await super().handle_DATA(server, session, envelope)
        if hold:
            self.held |= set(envelope.rcpt_tos)
            try:
                await self._released.wait()  # cancelled if the sender goes away meanwhile
            finally:
                self.held -= set(envelope.rcpt_tos)
        return answer

    def release(self) -> None:
        self.controller.loop.call_soon_threadsafe(self._released.set)


@dataclass
class System:
    base_url: str
    headers: dict[str, str]
    ws: str
    smtp: HeldAfter
    procs: dict[str, subprocess.Popen]
    logs: Path
    env: dict[str, str] = field(default_factory=dict)

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


@asynccontextmanager
async def scaled_out(base_env, pg_pool, tmp_path, **settings: str) -> AsyncIterator[System]:
    smtp = HeldAfter(ARRIVED_BEFORE_HOLD)
    smtp.controller = Controller(smtp, hostname="127.0.0.1", port=embedded.free_port())
    smtp.controller.start()
    port = embedded.free_port()
    relay_name = unique("relay")
    # The relay starts at the head of the shared test database: this test's events are what it sends.
    await pg_pool.execute(
        "INSERT INTO relay_positions (relay, position) "
        "SELECT $1, coalesce(max(notification_id), 0) FROM porchlight_events",
        relay_name,
    )
    env = {
        **os.environ, **base_env,
        "PORT": str(port), "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.controller.port),
        "RELAY_NAME": relay_name,
        "NOTIFIER_GROUP_ID": unique("notifier"), "PROJECTOR_GROUP_ID": unique("projector"),
        "LOG_FORMAT": "json", **settings,
    }
    env.pop("METRICS_PORT", None)  # two processes of a kind cannot share one
    names = ("api", "relay", "notifier-1", "notifier-2", "projector-1", "projector-2")
    procs: dict[str, subprocess.Popen] = {}
    files = {name: open(tmp_path / f"{name}.log", "wb") for name in names}  # noqa: SIM115 - closed below
    try:
        for name in names:
            command = name.split("-")[0]
            procs[name] = subprocess.Popen([sys.executable, "-m", "deploy.cli", command], env=env,
                                           stdout=files[name], stderr=subprocess.STDOUT)
        ws = unique("ws")
        token = make_staff_token(STAFF_JWT_SECRET, sub="owner-1", ws=ws, role="owner")
        system = System(f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}, ws, smtp, procs,
                        tmp_path, env)
        yield system
    finally:
        smtp.release()
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for f in files.values():
            f.close()
        smtp.controller.stop()


_PARTITION = re.compile(r"TopicPartition\(topic='([^']+)', partition=(\d+)\)")


def assigned(log: str, topic: str) -> set[int] | None:
    """The partitions of `topic` a process holds, from its log (FastStream logs every assignment
    of each consumer); None before its first."""
    latest = None
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("topic") == topic and "assigned to partitions" in record.get("event", ""):
            latest = {int(p) for t, p in _PARTITION.findall(record["event"]) if t == topic}
    return latest


async def wait_until_split(system: System, topic_names: dict[str, str]) -> None:
    """Each notifier and each projector holds some partitions of every topic it reads, the
    two of a kind all of them between them."""
    reads = {"notifier": [topic_names["access"]], "projector": [topic_names["access"], topic_names["deliveries"]]}

    async def split() -> bool:
        for name, proc in system.procs.items():
            assert proc.poll() is None, f"{name} exited:\n{system.log_of(name)[-3000:]}"
        for kind, topics in reads.items():
            for topic in topics:
                first, second = (assigned(system.log_of(f"{kind}-{k}"), topic) for k in (1, 2))
                if not first or not second or first & second or first | second != set(range(DEFAULT_PARTITIONS)):
                    return False
        return True

    await poll_until(split, timeout=60, interval=0.2, what="two notifiers and two projectors to split the partitions")


async def invite(client: httpx.AsyncClient, system: System, emails: list[str]) -> None:
    limit = asyncio.Semaphore(CONCURRENT_REQUESTS)

    async def one(email: str) -> None:
        async with limit:
            response = await client.post(f"/v1/workspaces/{system.ws}/invitations", headers=system.headers,
                                         json={"email": email, "name": "Tess Traveler", "role": "charter_client"})
            assert response.status_code == 201, response.text

    await asyncio.gather(*(one(e) for e in emails))


async def in_flight(pg_pool, system: System) -> dict[int, set[str]] | None:
    """Once both notifiers are mid-send and every message they can have in flight has reached
    the SMTP server and waits there for its 250: by pid, the recipients each has claimed and
    handed to the server without recording an outcome (a batch's rows stay 'sending' until the
    whole batch is recorded, so answered ones are among them)."""
    rows = await pg_pool.fetch(
        "SELECT lease_owner, recipient FROM notifier_deliveries WHERE workspace = $1 AND status = 'sending'", system.ws)
    held = set(system.smtp.held)
    reached = {r for m in system.smtp.received for r in m.rcpt_tos}
    concurrency = int(system.env.get(
        "NOTIFIER_SEND_CONCURRENCY", NotifierSettings.model_fields["notifier_send_concurrency"].default))
    claimed = {proc.pid: {r["recipient"] for r in rows if f":{proc.pid}:" in r["lease_owner"]}
               for name, proc in system.procs.items() if name.startswith("notifier")}
    unanswered = {pid: c - (reached - held) for pid, c in claimed.items()}
    if all(unanswered.values()) and all(len(u & held) == min(len(u), concurrency) for u in unanswered.values()):
        return {pid: c & reached for pid, c in claimed.items()}
    return None


async def listed_with_outcomes(client: httpx.AsyncClient, system: System) -> dict[str, str | None]:
    """Every account of the workspace in the status list, with its last delivery's status."""
    found, cursor = {}, None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/v1/workspaces/{system.ws}/accounts", headers=system.headers, params=params)).json()
        found |= {item["email"]: item.get("last_delivery_status") for item in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            return found


async def burst_with_a_stop(system: System, pg_pool, topic_names, sig: signal.Signals) -> tuple[list[str], set[str]]:
    """The scenario of the module's docstring. Returns the invited addresses and those the
    stopped notifier had handed to the SMTP server without recording an outcome when it got `sig`."""
    emails = [f"{unique('traveler')}@example.com" for _ in range(INVITES)]
    async with httpx.AsyncClient(base_url=system.base_url, timeout=30) as client:
        async def ready():
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await poll_until(ready, timeout=60, interval=0.2, what="/readyz")
        await wait_until_split(system, topic_names)
        put = await client.put(f"/v1/workspaces/{system.ws}", headers=system.headers, json={
            "name": "Pride Travelers", "plan": "pro", "portal_enabled": True,
            "branding": {"sender_name": "Pride Travelers", "brand_color": "#0B7A75"}})
        assert put.status_code == 201, put.text

        await invite(client, system, emails[: INVITES // 2])
        handed = await poll_until(lambda: in_flight(pg_pool, system), timeout=30, what="both notifiers mid-send")
        assert ARRIVED_BEFORE_HOLD <= len(system.smtp.received) < INVITES // 2  # some arrived, not all
        notifier, projector = system.procs["notifier-1"], system.procs["projector-1"]
        for proc in (notifier, projector):
            proc.send_signal(sig)
        if sig == signal.SIGKILL:
            for proc in (notifier, projector):
                await asyncio.to_thread(proc.wait, 10)
        system.smtp.release()
        for proc in (notifier, projector):
            await asyncio.to_thread(proc.wait, 30)
        await invite(client, system, emails[INVITES // 2 :])

        async def everyone_mailed():
            return {r for m in system.smtp.received for r in m.rcpt_tos} >= set(emails)

        await poll_until(everyone_mailed, timeout=60, interval=0.2, what=f"an email to each of {INVITES} invitees")

        async def everyone_listed_as_sent():
            listed = await listed_with_outcomes(client, system)
            return listed if all(listed.get(e) == "sent" for e in emails) else None

        listed = await poll_until(everyone_listed_as_sent, timeout=60, interval=0.2,
                                  what="every account in the status list with its email sent")
    assert set(listed) == set(emails)
    return emails, handed[notifier.pid]


async def ledger(pg_pool, system: System) -> dict[str, tuple[str, int]]:
    rows = await pg_pool.fetch(
        "SELECT recipient, status, attempt FROM notifier_deliveries WHERE workspace = $1", system.ws)
    return {r["recipient"]: (r["status"], r["attempt"]) for r in rows}


async def test_sigterm_mid_burst_stops_a_notifier_and_a_projector_with_every_email_sent_exactly_once(
    base_env, pg_pool, topic_names, tmp_path
):
    async with scaled_out(base_env, pg_pool, tmp_path) as system:
        emails, _ = await burst_with_a_stop(system, pg_pool, topic_names, signal.SIGTERM)
        for name in ("notifier-1", "projector-1"):
            assert system.procs[name].returncode == 0, system.log_of(name)[-3000:]  # a graceful stop
        copies = Counter(r for m in system.smtp.received for r in m.rcpt_tos)
        assert {e: copies[e] for e in emails} == {e: 1 for e in emails}
        assert len({m.message["Message-ID"] for m in system.smtp.received}) == INVITES
        # The stopping notifier finished and recorded what it was sending: nothing waited for a lease.
        assert await ledger(pg_pool, system) == {e: ("sent", 1) for e in emails}


# Batches no larger than the send concurrency, so a claim's lease is one send timeout x 1.5
# (Notifier.lease_for): 15 s, and the killed notifier's deliveries are taken over within the
# test; the timeout is still long enough for the sends the SMTP server holds.
KILL_SETTINGS = {"NOTIFIER_BATCH_MAX": "8", "NOTIFIER_LEASE_SECONDS": "5", "SMTP_TIMEOUT_SECONDS": "10",
                 "PROVIDER_TIMEOUT_SECONDS": "10", "NOTIFIER_RETRY_POLL_SECONDS": "0.2"}


async def test_sigkill_mid_burst_loses_no_email_and_repeats_only_the_killed_notifiers_unrecorded_sends_with_their_message_id(
    base_env, pg_pool, topic_names, tmp_path
):
    async with scaled_out(base_env, pg_pool, tmp_path, **KILL_SETTINGS) as system:
        emails, unrecorded = await burst_with_a_stop(system, pg_pool, topic_names, signal.SIGKILL)
        assert unrecorded
        copies: dict[str, list[str]] = {}
        for mail in system.smtp.received:
            for recipient in mail.rcpt_tos:
                copies.setdefault(recipient, []).append(mail.message["Message-ID"])
        assert set(copies) == set(emails)
        # Sent twice: exactly what the killed notifier had handed to the SMTP server without
        # recording the outcome; the second copy carries the first one's Message-ID.
        twice = {e for e, ids in copies.items() if len(ids) > 1}
        assert twice == unrecorded
        assert all(len(ids) == 2 and ids[0] == ids[1] for e, ids in copies.items() if e in twice)
        assert len({ids[0] for ids in copies.values()}) == INVITES
        # Those were sent again once the dead notifier's lease ran out; the rest went once.
        assert await ledger(pg_pool, system) == {e: ("sent", 2 if e in twice else 1) for e in emails}
