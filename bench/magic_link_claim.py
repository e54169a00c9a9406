"""Latency of a magic-link sign-in (the POST that spends the link) at a steady 100 requests/s.

    .venv/bin/python -m bench.magic_link_claim [--rate 100] [--seconds 10]

Seeds `rate x seconds` active accounts, each with a fresh magic link (through the
Application, as the API would), then starts `porchlight api` and POSTs one link per
request on an open-loop schedule (a request goes out at its time whether or not earlier
ones answered, so a slow server shows up as latency, not as a lower rate). Each sign-in
reads the account's events, checks the MAC, stores SignedIn with the session row (and the
account's access row) in one transaction, and sets the cookie. Baseline in the same run,
on the same server at the same rate: `GET /healthz` (the HTTP round trip alone).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time

import aiohttp
import asyncpg

from bench.infra import database, percentile
from deploy import embedded
from deploy.migrate import migrate_database
from services.common import tokens
from services.common.database import eventsourcing_env
from services.invite_service.application import InviteCommand, PortalAccess

STAFF = {"kind": "staff", "id": "bench", "reason": None}
SECRET = "b" * 40


async def seed(url: str, count: int) -> tuple[str, list[str]]:
    """`count` active accounts in a magic-link workspace, and one link path for each."""
    access = PortalAccess(eventsourcing_env(url), secret_key=SECRET.encode())
    ws = f"bench-{secrets.token_hex(4)}"
    await access.configure_workspace(ws, {"plan": "pro", "name": "Bench", "sign_in_method": "magic_link"}, STAFF)
    emails = [f"m{i}@example.com" for i in range(count)]

    async def one(email: str) -> str:
        invited = await access.invite(ws, InviteCommand(email=email, name="Bench Client", role="customer"), STAFF)
        invitation = await asyncio.to_thread(access.repository.get, invited.invitation_id)
        await access.claim(ws, access.claim_link("", invitation).rsplit("/", 1)[1])
        await access.request_sign_in(ws, email)
        account = await asyncio.to_thread(access.get_account, invited.account_id)
        return tokens.magic_link("", ws, tokens.make_token(SECRET.encode(), tokens.MAGIC, account.id, account.magic_nonce))

    paths = []
    for start in range(0, count, 100):  # 100 at a time: group commits, without a thousand threads
        paths += await asyncio.gather(*(one(e) for e in emails[start:start + 100]))
    access.close()
    return ws, paths


async def open_loop(base: str, requests: list[tuple[str, str]], rate: float) -> tuple[list[float], int]:
    """Send (method, path) at `rate`/s on schedule; latencies in ms, and how many failed."""
    latencies: list[float] = []
    failures = 0
    connector = aiohttp.TCPConnector(limit=0)
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as client:
        async def one(method: str, path: str) -> None:
            nonlocal failures
            t0 = time.perf_counter()
            async with client.request(method, path, data=b"{}" if method == "POST" else None) as r:
                await r.read()
                if r.status != 200:
                    failures += 1
            latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        tasks = []
        for i, (method, path) in enumerate(requests):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(method, path)))
        await asyncio.gather(*tasks)
    return latencies, failures


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(url: str, rate: float, seconds: float) -> None:
    count = int(rate * seconds)
    t0 = time.perf_counter()
    ws, paths = await seed(url, count)
    print(f"seeded {count} accounts with a magic link each in {time.perf_counter() - t0:.1f} s")
    # Flush what seeding dirtied now, so a checkpoint does not land in the measurement.
    conn = await asyncpg.connect(url)
    await conn.execute("CHECKPOINT")
    await conn.close()
    port = embedded.free_port()
    env = {**os.environ, "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PORT": str(port),
           "PORCHLIGHT_SECRET_KEY": SECRET, "STAFF_JWT_SECRET": "j" * 40, "LOG_LEVEL": "WARNING",
           "SIGN_IN_PER_IP": "1000000"}  # every request comes from this one address
    proc = subprocess.Popen([sys.executable, "-m", "deploy.cli", "api"], env=env)
    try:
        embedded.wait_for_port(port, timeout=30, proc=proc)
        base = f"http://127.0.0.1:{port}"
        await open_loop(base, [("GET", "/healthz")] * 50, rate)  # warm up connections and code paths
        cpu0 = _cpu_seconds(proc.pid)
        baseline, _ = await open_loop(base, [("GET", "/healthz")] * count, rate)
        cpu1 = _cpu_seconds(proc.pid)
        claims, failed = await open_loop(base, [("POST", p) for p in paths], rate)
        cpu2 = _cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"\n{count} requests at {rate:.0f}/s, open loop, one API process, one PostgreSQL server")
    print(f"{'measurement':<36}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, values in (("GET /healthz (baseline)", baseline), ("magic-link sign-in (POST)", claims)):
        print(f"{name:<36}{percentile(values, 50):>9.1f}{percentile(values, 99):>9.1f}{max(values):>9.1f}")
    print(f"sign-ins refused: {failed} of {count}")
    print(f"API process CPU per request: healthz {(cpu1 - cpu0) / count * 1000:.2f} ms, "
          f"sign-in {(cpu2 - cpu1) / count * 1000:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with database() as url:
        asyncio.run(migrate_database(url))
        asyncio.run(run(url, args.rate, args.seconds))


if __name__ == "__main__":
    main()
