"""Does an answer's timing tell whether an address has an account? Known and unknown
addresses, interleaved, against `porchlight api`.

    .venv/bin/python -m bench.sign_in_timing [--requests 200]

For each endpoint that takes an email, alternates a request for an address with an active
account and one without, and prints p50/p90 of each and their difference. "Email me a
link" and "forgot password" answer before the work (202, the work runs after); a code or
a password check does the same work either way (a derived code against a stand-in nonce,
argon2 against a dummy hash). Baseline in the same run: the same endpoint, unknown vs
unknown, i.e. the noise floor of this measurement on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import aiohttp

from bench.infra import database, percentile
from bench.magic_link_claim import SECRET, seed
from deploy import embedded
from deploy.migrate import migrate_database


async def _timed(client: aiohttp.ClientSession, path: str, body: dict) -> float:
    t0 = time.perf_counter()
    async with client.post(path, json=body) as r:
        await r.read()
    return (time.perf_counter() - t0) * 1000


async def run(url: str, requests: int) -> None:
    ws, _ = await seed(url, requests)  # active accounts m0..mN@example.com in a magic-link workspace
    port = embedded.free_port()
    env = {**os.environ, "DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "PORT": str(port),
           "PORCHLIGHT_SECRET_KEY": SECRET, "STAFF_JWT_SECRET": "j" * 40, "LOG_LEVEL": "WARNING",
           "SIGN_IN_PER_IP": "1000000", "SIGN_IN_PER_EMAIL": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "deploy.cli", "api"], env=env)
    rows = []
    try:
        embedded.wait_for_port(port, timeout=30, proc=proc)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers={"Accept": "application/json"}) as client:
            for name, path, extra in (("sign-in (link)", f"/portal/{ws}/sign-in", {}),
                                      ("forgot password", f"/portal/{ws}/password/forgot", {}),
                                      ("code check", f"/portal/{ws}/sign-in/code", {"code": "000000"}),
                                      ("password check", f"/portal/{ws}/sign-in/password", {"password": "x" * 14})):
                known, unknown, noise = [], [], []
                for i in range(requests):
                    known.append(await _timed(client, path, {"email": f"m{i}@example.com", **extra}))
                    unknown.append(await _timed(client, path, {"email": f"nobody{i}@example.com", **extra}))
                    noise.append(await _timed(client, path, {"email": f"nobody{i}b@example.com", **extra}))
                rows.append((name, known, unknown, noise))
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"\n{requests} requests each, interleaved; ms")
    print(f"{'endpoint':<18}{'known p50':>11}{'unknown p50':>13}{'diff':>8}{'noise diff':>12}{'known p90':>11}{'unknown p90':>13}")
    for name, known, unknown, noise in rows:
        diff = percentile(known, 50) - percentile(unknown, 50)
        floor = percentile(noise, 50) - percentile(unknown, 50)
        print(f"{name:<18}{percentile(known, 50):>11.2f}{percentile(unknown, 50):>13.2f}{diff:>8.2f}{floor:>12.2f}"
              f"{percentile(known, 90):>11.2f}{percentile(unknown, 90):>13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with database() as url:
        asyncio.run(migrate_database(url))
        asyncio.run(run(url, args.requests))


if __name__ == "__main__":
    main()
