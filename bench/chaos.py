"""An invite burst across a broker restart, a PostgreSQL restart and a killed notifier.

    .venv/bin/python -m bench.chaos [--invites 300] [--rate 60]

Starts an embedded PostgreSQL, a Tansu broker on a fixed port, an SMTP server that counts
what each address receives (in its own process), and `porchlight api|relay|notifier|projector`
as child processes, as `porchlight dev` runs them. While invites arrive at a steady rate, it
restarts the broker empty on the same address, `kill -9`s the notifier (and starts it again,
as a supervisor would), and restarts PostgreSQL on the same data. A client that gets no
answer or a 5xx retries the same invite (a 409 then means an earlier try committed), as a
host app would. Then it waits for the system to settle and reports, per invited address:
emails lost (none arrived), emails sent twice, and accounts missing from the status list.
Goal: none lost, none missing; a duplicate only for a send cut off mid-flight.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg

from deploy import embedded
from deploy.migrate import migrate
from services.common.staff_auth import make_staff_token

SERVICES = ("api", "relay", "notifier", "projector")


def _smtp_counter(port: int, counts) -> None:
    """In its own process: count the messages each recipient receives."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            for rcpt in envelope.rcpt_tos:
                counts[rcpt] = counts.get(rcpt, 0) + 1
            return "250 OK"

    Controller(Handler(), hostname="127.0.0.1", port=port).start()
    while True:  # until terminated
        time.sleep(3600)


class Stack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.pg = embedded.start_postgres(data_dir / "pg")
        self.kafka_port = embedded.free_port()
        self.tansu = embedded.start_tansu(self.kafka_port, log_file=data_dir / "tansu.log")
        self.port, self.smtp_port = embedded.free_port(), embedded.free_port()
        self.env = {
            **os.environ, "DATABASE_URL": self.pg.url, "KAFKA_BOOTSTRAP_SERVERS": self.tansu.bootstrap_servers,
            "PORT": str(self.port), "PORCHLIGHT_SECRET_KEY": "c" * 40, "STAFF_JWT_SECRET": "j" * 40,
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.smtp_port),
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        }
        self.children: dict[str, subprocess.Popen] = {}
        self.log = open(data_dir / "services.log", "ab")  # noqa: SIM115 - kept for the run

    def start(self, name: str) -> None:
        self.children[name] = subprocess.Popen(
            [sys.executable, "-m", "deploy.cli", name], env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def restart_broker(self) -> None:
        self.tansu.stop()
        self.tansu = embedded.start_tansu(self.kafka_port, log_file=self.data_dir / "tansu.log")

    def restart_postgres(self, down_seconds: float) -> None:
        self.pg.stop()
        time.sleep(down_seconds)
        self.pg = embedded.start_postgres(self.data_dir / "pg")

    def kill_notifier(self) -> None:
        self.children["notifier"].send_signal(signal.SIGKILL)
        self.children["notifier"].wait()

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        for child in self.children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        self.tansu.stop()
        self.pg.stop()


async def run(invites: int, rate: float, keep: bool) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="plchaos-"))
    data_dir.chmod(0o755)
    stack = Stack(data_dir)
    manager = multiprocessing.Manager()
    counts = manager.dict()
    smtp = multiprocessing.Process(target=_smtp_counter, args=(stack.smtp_port, counts), daemon=True)
    smtp.start()
    ws = f"chaos-{secrets.token_hex(3)}"
    headers = {"Authorization": f"Bearer {make_staff_token('j' * 40, sub='chaos', ws=ws, role='owner')}"}
    outcomes: Counter[str] = Counter()
    try:
        await migrate(stack.pg.url, stack.tansu.bootstrap_servers)
        for name in SERVICES:
            stack.start(name)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{stack.port}", headers=headers) as http:
            await _wait(lambda: _ready(http), 120, "readyz")
            async with http.put(f"/v1/workspaces/{ws}", json={"plan": "pro", "name": "Chaos"}) as r:
                r.raise_for_status()

            async def invite(email: str) -> None:
                attempt = 0
                while True:
                    attempt += 1
                    try:
                        async with http.post(f"/v1/workspaces/{ws}/invitations", json={"email": email}) as r:
                            if r.status in (201, 409):
                                outcomes["201" if r.status == 201 and attempt == 1 else f"{r.status} after retry"] += 1
                                return
                            outcomes[f"retried {r.status}"] += 1
                    except aiohttp.ClientError:
                        outcomes["retried: no answer"] += 1
                    await asyncio.sleep(min(0.2 * attempt, 2.0))

            emails = [f"chaos{i}.{ws}@example.com" for i in range(invites)]
            duration = invites / rate
            faults = [
                (0.2 * duration, "broker restarted empty", stack.restart_broker),
                (0.45 * duration, "notifier killed (-9) and started again", lambda: (stack.kill_notifier(), stack.start("notifier"))),
                (0.7 * duration, "PostgreSQL restarted", lambda: stack.restart_postgres(1.0)),
            ]
            started = time.monotonic()

            async def inject_faults() -> None:
                # Beside the load, not in its loop: invites keep arriving while a fault lasts.
                for at, what, fault in faults:
                    await asyncio.sleep(max(0.0, started + at - time.monotonic()))
                    print(f"  t={time.monotonic() - started:5.1f}s  {what}", flush=True)
                    await asyncio.to_thread(fault)

            tasks = [asyncio.create_task(inject_faults())]
            for i, email in enumerate(emails):
                tasks.append(asyncio.create_task(invite(email)))
                await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
            await asyncio.gather(*tasks)
            accepted_at = time.monotonic()
            print(f"  t={accepted_at - started:5.1f}s  all {invites} invites accepted ({dict(outcomes)})", flush=True)

            async def listed() -> int:
                conn = await asyncpg.connect(stack.pg.url)
                try:
                    return await conn.fetchval("SELECT count(*) FROM account_status WHERE workspace = $1", ws)
                finally:
                    await conn.close()

            async def settled() -> bool:
                return sum(1 for e in emails if counts.get(e)) == invites and await listed() == invites

            try:
                await _wait(settled, 180, "every email and every row")
            except TimeoutError:
                print("  did not settle within 180 s")
            settled_at = time.monotonic()
        received = {e: counts.get(e, 0) for e in emails}
        lost = sum(1 for n in received.values() if n == 0)
        twice = sum(1 for n in received.values() if n > 1)
        missing = invites - await listed()
        print(f"\n{invites} invites at {rate:.0f}/s across a broker restart, a notifier kill -9 and a PostgreSQL restart")
        print(f"  emails lost (none arrived)     {lost}")
        print(f"  emails sent more than once     {twice}")
        print(f"  accounts missing from list     {missing}")
        print(f"  settled {settled_at - accepted_at:.1f} s after the last invite was accepted")
        return 0 if lost == 0 and missing == 0 else 1
    finally:
        stack.stop()
        smtp.terminate()
        smtp.join(5)
        manager.shutdown()
        if keep:
            print(f"  data and logs kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


async def _ready(http: aiohttp.ClientSession) -> bool:
    try:
        async with http.get("/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(what)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invites", type=int, default=300)
    parser.add_argument("--rate", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the data dir and the services' log")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(run(args.invites, args.rate, args.keep)))


if __name__ == "__main__":
    main()
