"""Time from an invite request to its email reaching the SMTP server, through every process.

    .venv/bin/python -m bench.email_latency [--invites 300] [--rate 25]

Starts PostgreSQL and a broker (or uses DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS), an
aiosmtpd server in this process, and `porchlight api|relay|notifier|projector` as child
processes. It sends invites at a steady rate (open loop, so a slow system cannot slow the
load down) and measures POST start → SMTP DATA received. Baselines from the same run:
one SMTP send straight to the same server, and one Kafka produce → consume round trip.
The goal is p99 at or under 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
from email.message import EmailMessage

import aiohttp
import aiosmtplib
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller

from bench.infra import broker, database, percentile
from deploy import embedded
from deploy.migrate import migrate
from services.common.kafka import create_producer, ensure_topics
from services.common.staff_auth import make_staff_token

SERVICES = ("api", "relay", "notifier", "projector")


class Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        now = time.perf_counter()
        for rcpt in envelope.rcpt_tos:
            self.at.setdefault(rcpt, now)
        return "250 OK"


async def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(what)


async def smtp_baseline(port: int, n: int = 100) -> list[float]:
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "b@example.com", f"base{i}@example.com", "baseline"
        msg.set_content("x" * 500)
        t0 = time.perf_counter()
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)
        out.append(time.perf_counter() - t0)
    return out


async def kafka_baseline(bootstrap: str, n: int = 100) -> list[float]:
    topic = f"bench.rtt.{secrets.token_hex(3)}"
    await ensure_topics(bootstrap, [topic], partitions=1)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=topic)
    producer = create_producer(bootstrap)
    await consumer.start()
    await producer.start()
    out = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            await producer.send_and_wait(topic, str(i).encode())
            while True:
                msg = await consumer.getone()
                if msg.value == str(i).encode():
                    break
            out.append(time.perf_counter() - t0)
    finally:
        await producer.stop()
        await consumer.stop()
    return out


async def measure(url: str, bootstrap: str, invites: int, rate: float) -> None:
    await migrate(url, bootstrap)
    arrivals = Arrivals()
    smtp_port, port = embedded.free_port(), embedded.free_port()
    controller = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    suffix = secrets.token_hex(3)
    env = {**os.environ, "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "PORT": str(port),
           "PORCHLIGHT_SECRET_KEY": "b" * 40, "STAFF_JWT_SECRET": "j" * 40, "SMTP_HOST": "127.0.0.1",
           "SMTP_PORT": str(smtp_port), "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"), "RELAY_NAME": f"bench-{suffix}",
           "NOTIFIER_GROUP_ID": f"bench-notifier-{suffix}", "PROJECTOR_GROUP_ID": f"bench-projector-{suffix}"}
    procs = [subprocess.Popen([sys.executable, "-m", "deploy.cli", s], env=env) for s in SERVICES]
    ws = f"bench-{suffix}"
    headers = {"Authorization": f"Bearer {make_staff_token('j' * 40, sub='bench', ws=ws, role='owner')}"}
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers) as http:
            async def ready():
                try:
                    async with http.get("/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(ready, 90, "readyz")
            async with http.put(f"/v1/workspaces/{ws}", json={"plan": "pro", "name": "Bench"}) as r:
                r.raise_for_status()

            async def invite(email: str) -> float:
                t0 = time.perf_counter()
                async with http.post(f"/v1/workspaces/{ws}/invitations", json={"email": email}) as r:
                    r.raise_for_status()
                return t0

            # Warm up: every consumer of each group joins (Tansu holds each first join ~5 s, and
            # each join rebalances the group), so measure only once all are settled.
            warmup = [f"warmup{i}@example.com" for i in range(24)]
            for email in warmup:
                await invite(email)
                await asyncio.sleep(0.5)
            await wait_until(lambda: _async(all(e in arrivals.at for e in warmup)), 60, "the warm-up emails")

            started: dict[str, float] = {}
            tasks = []
            for i in range(invites):
                email = f"lat{i}@example.com"
                tasks.append(asyncio.create_task(invite(email)))
                tasks[-1].add_done_callback(lambda t, e=email: started.__setitem__(e, t.result()))
                await asyncio.sleep(1 / rate)
            await asyncio.gather(*tasks)
            await wait_until(lambda: _async(all(e in arrivals.at for e in started)), 120, "every email")
        latencies = [arrivals.at[e] - t0 for e, t0 in started.items()]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)
        controller.stop()
    smtp = await smtp_baseline(smtp_port_restart(arrivals))
    kafka = await kafka_baseline(bootstrap)
    report(invites, rate, latencies, smtp, kafka)


def smtp_port_restart(arrivals: Arrivals) -> int:
    global _baseline_controller
    port = embedded.free_port()
    _baseline_controller = Controller(arrivals, hostname="127.0.0.1", port=port)
    _baseline_controller.start()
    return port


async def _async(value):
    return value


def report(invites: int, rate: float, latencies: list[float], smtp: list[float], kafka: list[float]) -> None:
    def row(name, values):
        ms = [v * 1000 for v in values]
        print(f"{name:<40}{percentile(ms, 50):>8.1f}{percentile(ms, 95):>8.1f}{percentile(ms, 99):>8.1f}{max(ms):>8.1f}")

    print(f"\n{invites} invites at {rate:.0f}/s, open loop; milliseconds")
    print(f"{'measurement':<40}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}")
    row("invite request -> email at SMTP server", latencies)
    row("baseline: one SMTP send, same server", smtp)
    row("baseline: Kafka produce -> consume", kafka)
    print("goal: invite -> email p99 <= 250 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invites", type=int, default=300)
    parser.add_argument("--rate", type=float, default=25.0)
    args = parser.parse_args()
    with database() as url, broker() as bootstrap:
        asyncio.run(measure(url, bootstrap, args.invites, args.rate))


if __name__ == "__main__":
    main()
