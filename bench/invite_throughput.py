"""Invite throughput under 64 concurrent requests, next to raw one-row PostgreSQL commits.

    .venv/bin/python -m bench.invite_throughput [--seconds 5] [--concurrency 64]

Figures from one run on one server:
  baseline  64 connections each committing one-row INSERTs (asyncpg, autocommit)
  app       64 coroutines calling the Application's invite command (the write path itself,
            the one the API awaits)
  http      64 concurrent HTTP clients POSTing invitations to `porchlight api`
  ceiling   the same clients against an empty FastAPI endpoint (bench/empty_app.py): the
            most any endpoint could reach here with this client on these cores
The goal is app and http at or above half the baseline rate. The HTTP client runs on the
same cores as the server and PostgreSQL, so the http figure is a lower bound.
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
from services.common.database import eventsourcing_env
from services.common.staff_auth import make_staff_token
from services.invite_service.application import InviteCommand, PortalAccess

STAFF = {"kind": "staff", "id": "bench", "reason": None}


async def raw_commits(url: str, concurrency: int, seconds: float) -> float:
    conn = await asyncpg.connect(url)
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, payload text NOT NULL)")
    await conn.close()
    pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker():
        nonlocal count
        async with pool.acquire() as c:
            while time.perf_counter() < deadline:
                await c.execute("INSERT INTO bench_raw (payload) VALUES ($1)", "x" * 100)
                count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return count / elapsed


async def app_invites(url: str, concurrency: int, seconds: float) -> float:
    access = await asyncio.to_thread(PortalAccess, eventsourcing_env(url), secret_key=b"b" * 32)
    ws = f"bench-{secrets.token_hex(4)}"
    await access.configure_workspace(ws, {"plan": "pro"}, STAFF)
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    done = 0

    async def worker():
        nonlocal done
        while time.perf_counter() < deadline:
            command = InviteCommand(email=f"co{next(counter)}@example.com", name="Bench", role="customer")
            await access.invite(ws, command, STAFF)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    access.close()
    return done / elapsed


async def http_invites(url: str, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    port = embedded.free_port()
    secret, jwt_secret = "b" * 40, "j" * 40
    env = {**os.environ, "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PORT": str(port),
           "PORCHLIGHT_SECRET_KEY": secret, "STAFF_JWT_SECRET": jwt_secret, "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "deploy.cli", "api", "--workers", os.environ.get("BENCH_API_WORKERS", "1")]
    ws = f"bench-{secrets.token_hex(4)}"
    token = make_staff_token(jwt_secret, sub="bench", ws=ws, role="owner")
    return await _post_invites(command, env, port, ws, token, concurrency, seconds)


async def ceiling(concurrency: int, seconds: float) -> tuple[float, list[float]]:
    port = embedded.free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.empty_app:app", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
    return await _post_invites(command, dict(os.environ), port, "ceiling", None, concurrency, seconds)


async def _post_invites(command, env, port, ws, token, concurrency, seconds) -> tuple[float, list[float]]:
    proc = subprocess.Popen(command, env=env)
    try:
        embedded.wait_for_port(port, timeout=30, proc=proc)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # aiohttp, not httpx: httpx's pool collapses to a few hundred requests/s at 64 concurrent
        # requests on this kind of machine, which would measure the client instead of the server.
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=headers, connector=connector) as client:
            if token:
                async with client.put(f"/v1/workspaces/{ws}", json={"plan": "pro"}) as r:
                    r.raise_for_status()
            latencies: list[float] = []
            counter = iter(range(10**9))
            deadline = time.perf_counter() + seconds

            async def worker():
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    async with client.post(f"/v1/workspaces/{ws}/invitations", json={"email": f"h{next(counter)}@example.com"}) as r:
                        r.raise_for_status()
                        await r.read()
                    latencies.append(time.perf_counter() - t0)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return len(latencies) / (time.perf_counter() - started), latencies
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with database() as url:
        asyncio.run(migrate_database(url))
        baseline = asyncio.run(raw_commits(url, args.concurrency, args.seconds))
        app_rate = asyncio.run(app_invites(url, args.concurrency, args.seconds))
        http_rate, latencies = asyncio.run(http_invites(url, args.concurrency, args.seconds))
    ceiling_rate, _ = asyncio.run(ceiling(args.concurrency, args.seconds))
    print(f"\nconcurrency {args.concurrency}, {args.seconds:.0f} s per measurement, one PostgreSQL server")
    print(f"{'measurement':<34}{'per second':>12}{'vs baseline':>13}")
    print(f"{'raw one-row commits (baseline)':<34}{baseline:>12,.0f}{1:>13.2f}")
    print(f"{'invites, Application, 64 tasks':<34}{app_rate:>12,.0f}{app_rate / baseline:>13.2f}")
    print(f"{'invites, HTTP, 64 clients':<34}{http_rate:>12,.0f}{http_rate / baseline:>13.2f}")
    print(f"{'HTTP ceiling: empty FastAPI endpoint':<34}{ceiling_rate:>12,.0f}{ceiling_rate / baseline:>13.2f}")
    print(f"HTTP latency ms: p50 {percentile(latencies, 50) * 1000:.1f}, p99 {percentile(latencies, 99) * 1000:.1f}")
    print("goal: invites >= 0.50 x baseline")


if __name__ == "__main__":
    main()
