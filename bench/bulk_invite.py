"""A 10,000-row bulk invite: seconds until the answer (every row's events committed).

    .venv/bin/python -m bench.bulk_invite [--rows 10000] [--runs 3]

Figures from one run on one server, each the best and the median of `--runs` tries:
  baseline  raw asyncpg: as many event-sized rows as the bulk stores (two per invite),
            inserted in one transaction (executemany)
  app       the Application's `invite_many` with 10,000 commands (no HTTP, no parsing)
  http      `porchlight api` answering POST .../invitations/bulk with 10,000 JSON rows,
            then the same as CSV (client: aiohttp, in this process)
The goal is the http figure at or under 3 s on a 2-core machine. Wall time depends on
what else runs on the cores, so the CPU seconds the API process and the PostgreSQL
backends spent on each bulk are printed too (from /proc; PostgreSQL's only when embedded).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
import asyncpg

from bench.infra import database
from deploy import embedded
from deploy.migrate import migrate_database
from services.common.database import eventsourcing_env
from services.common.staff_auth import make_staff_token
from services.invite_service.application import InviteCommand, PortalAccess

STAFF = {"kind": "staff", "id": "bench", "reason": None}
EVENT_BYTES = 400  # about the size of a stored AccountCreated or InviteSent


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads


def _postgres_backends(url: str) -> list[int]:
    """The embedded server's processes (children of the postmaster); none for an external server."""
    socket_dir = parse_qs(urlparse(url).query).get("host", [""])[0]
    pid_file = Path(socket_dir) / "postmaster.pid"
    if not socket_dir or not pid_file.exists():
        return []
    postmaster = pid_file.read_text().split()[0]
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == postmaster:
                children.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return children


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += _cpu_seconds(pid)
        except OSError:  # a backend that ended
            continue
    return total


async def raw_insert(url: str, rows: int) -> float:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_bulk (id bigserial PRIMARY KEY, originator uuid, payload bytea)")
        values = [(secrets.token_bytes(16).hex(), secrets.token_bytes(EVENT_BYTES)) for _ in range(2 * rows)]
        started = time.perf_counter()
        async with conn.transaction():
            await conn.executemany("INSERT INTO bench_bulk (originator, payload) VALUES ($1::uuid, $2)", values)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def app_bulk(url: str, rows: int) -> float:
    access = await asyncio.to_thread(PortalAccess, eventsourcing_env(url), secret_key=b"b" * 32)
    try:
        ws = f"bench-{secrets.token_hex(4)}"
        await access.configure_workspace(ws, {"plan": "pro"}, STAFF)
        commands = [InviteCommand(email=f"co{i}@example.com", name=f"Client {i}", role="customer") for i in range(rows)]
        started = time.perf_counter()
        outcomes = await access.invite_many(ws, commands, STAFF)
        elapsed = time.perf_counter() - started
        assert sum(o.status == "created" for o in outcomes) == rows
        return elapsed
    finally:
        access.close()


def _csv(rows: list[dict]) -> bytes:
    lines = ["email,name,role"] + [f"{r['email']},{r['name']},customer" for r in rows]
    return ("\n".join(lines) + "\n").encode()


async def http_bulk(url: str, rows: int, runs: int) -> dict[str, list[float]]:
    port = embedded.free_port()
    secret, jwt_secret = "b" * 40, "j" * 40
    env = {**os.environ, "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PORT": str(port),
           "PORCHLIGHT_SECRET_KEY": secret, "STAFF_JWT_SECRET": jwt_secret, "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "deploy.cli", "api", "--workers", "1"], env=env)
    times: dict[str, list[float]] = {"json": [], "csv": [], "api_cpu": [], "pg_cpu": []}
    try:
        embedded.wait_for_port(port, timeout=30, proc=proc)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", timeout=aiohttp.ClientTimeout(total=120)) as client:
            for run in range(runs):
                for kind in ("json", "csv"):
                    ws = f"bench-{secrets.token_hex(4)}"
                    headers = {"Authorization": f"Bearer {make_staff_token(jwt_secret, sub='bench', ws=ws, role='owner')}"}
                    async with client.put(f"/v1/workspaces/{ws}", json={"plan": "pro"}, headers=headers) as r:
                        r.raise_for_status()
                    body = [{"email": f"c{run}-{i}@example.com", "name": f"Client {i}"} for i in range(rows)]
                    backends = _postgres_backends(url)
                    api_cpu, pg_cpu = _cpu_seconds(proc.pid), _cpu(backends)
                    started = time.perf_counter()
                    if kind == "json":
                        request = client.post(f"/v1/workspaces/{ws}/invitations/bulk", json={"invitations": body}, headers=headers)
                    else:
                        request = client.post(f"/v1/workspaces/{ws}/invitations/bulk", data=_csv(body),
                                              headers={**headers, "Content-Type": "text/csv"})
                    async with request as r:
                        r.raise_for_status()
                        answer = await r.json()
                    times[kind].append(time.perf_counter() - started)
                    if kind == "json":
                        times["api_cpu"].append(_cpu_seconds(proc.pid) - api_cpu)
                        times["pg_cpu"].append(_cpu(backends) - pg_cpu)
                    assert answer["created"] == rows, answer["created"]
        return times
    finally:
        proc.terminate()
        proc.wait(10)


def _line(name: str, values: list[float], baseline: float) -> str:
    best, median = min(values), statistics.median(values)
    return f"{name:<40}{best:>8.2f}{median:>9.2f}{median / baseline:>13.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with database() as url:
        asyncio.run(migrate_database(url))
        raw = [asyncio.run(raw_insert(url, args.rows)) for _ in range(args.runs)]
        app = [asyncio.run(app_bulk(url, args.rows)) for _ in range(args.runs)]
        http = asyncio.run(http_bulk(url, args.rows, args.runs))
    baseline = statistics.median(raw)
    print(f"\n{args.rows:,} rows, {args.runs} runs each, one PostgreSQL server")
    print(f"{'measurement (seconds)':<40}{'best':>8}{'median':>9}{'vs baseline':>13}")
    print(_line(f"raw INSERT of {2 * args.rows:,} rows, 1 txn (baseline)", raw, baseline))
    print(_line("Application.invite_many (no HTTP)", app, baseline))
    print(_line("HTTP bulk, JSON", http["json"], baseline))
    print(_line("HTTP bulk, CSV", http["csv"], baseline))
    print(f"CPU seconds per JSON bulk (median): API process {statistics.median(http['api_cpu']):.2f},"
          f" PostgreSQL {statistics.median(http['pg_cpu']):.2f}")
    print("goal: HTTP bulk <= 3 s")


if __name__ == "__main__":
    main()
