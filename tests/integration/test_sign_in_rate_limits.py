"""Rate limits on sign-in requests: per email and per client address, counted in PostgreSQL
so they hold across API processes, with Retry-After, and over once the window is."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import subprocess
import sys
from contextlib import asynccontextmanager

import httpx

from deploy import embedded
from services.common.settings import ApiSettings
from services.invite_service.api.app import create_app
from tests.helpers import poll_until
from tests.integration.sign_in_helpers import JSON, unknown_email


def _settings(base_env, **overrides) -> ApiSettings:
    return ApiSettings(**{**{k.lower(): v for k, v in base_env.items()}, **overrides})


def fresh_address() -> str:
    """A peer address no other test used: the counters live in the shared database."""
    return str(ipaddress.ip_address("198.18.0.0") + secrets.randbelow(2**17))


@asynccontextmanager
async def in_process(settings: ApiSettings, peer: str = "127.0.0.1"):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def _age_window(pg_pool, bucket: str, key: str) -> None:
    digest = hashlib.sha256(f"{bucket}|{key}".encode()).digest()
    await pg_pool.execute("UPDATE portal_rate_limits SET window_start = window_start - interval '16 minutes' "
                          "WHERE bucket = $1 AND key = $2", bucket, digest)


async def test_five_requests_per_email_then_429_until_the_window_moves_on(base_env, pg_pool):
    async with in_process(_settings(base_env)) as client:
        email = unknown_email()  # limits apply whether or not an account exists: no oracle there either
        answers = [await client.post("/portal/ws-any/sign-in", headers=JSON, json={"email": email}) for _ in range(6)]
        assert [a.status_code for a in answers] == [202] * 5 + [429]
        assert answers[-1].json()["code"] == "too_many_attempts"
        assert 800 < int(answers[-1].headers["retry-after"]) <= 900
        # Another address is not held up by this one.
        assert (await client.post("/portal/ws-any/sign-in", headers=JSON, json={"email": unknown_email()})).status_code == 202
        await _age_window(pg_pool, "sign-in:email", email)
        assert (await client.post("/portal/ws-any/sign-in", headers=JSON, json={"email": email})).status_code == 202


async def test_thirty_requests_per_address_and_the_forwarded_address_counts_only_from_trusted_proxies(base_env):
    limit = 4
    peer = fresh_address()
    async with in_process(_settings(base_env, sign_in_per_ip=limit), peer) as client:
        codes = [(await client.post("/portal/ws-any/sign-in/password", headers={**JSON, "X-Forwarded-For": f"198.51.100.{i}"},
                                    json={"email": unknown_email(), "password": "x" * 12})).status_code
                 for i in range(limit + 1)]
        assert codes == [401] * limit + [429]  # not trusted: every request is the peer's
    proxy = fresh_address()
    async with in_process(_settings(base_env, sign_in_per_ip=limit, trusted_proxies=[proxy]), proxy) as client:
        forwarded = {**JSON, "X-Forwarded-For": fresh_address()}
        codes = [(await client.post("/portal/ws-any/sign-in/password", headers=forwarded,
                                    json={"email": unknown_email(), "password": "x" * 12})).status_code
                 for _ in range(limit + 1)]
        assert codes == [401] * limit + [429]
        other = {**JSON, "X-Forwarded-For": fresh_address()}
        assert (await client.post("/portal/ws-any/sign-in/password", headers=other,
                                  json={"email": unknown_email(), "password": "x" * 12})).status_code == 401


async def test_the_limit_holds_across_two_api_processes(base_env, tmp_path):
    ports = [embedded.free_port(), embedded.free_port()]
    logs = [open(tmp_path / f"api{i}.log", "wb") for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "deploy.cli", "api"], stdout=logs[i], stderr=subprocess.STDOUT,
                              env={**os.environ, **base_env, "PORT": str(port)}) for i, port in enumerate(ports)]
    try:
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) for port in ports]

        async def up():
            for proc in procs:
                assert proc.poll() is None, (tmp_path / "api0.log").read_text() + (tmp_path / "api1.log").read_text()
            try:
                return all([(await c.get("/healthz")).status_code == 200 for c in clients])
            except httpx.TransportError:
                return False

        await poll_until(up, timeout=60, what="both API processes")
        email = unknown_email()
        statuses = []
        for i in range(6):  # alternate between the two replicas
            answer = await clients[i % 2].post("/portal/ws-any/password/forgot", headers=JSON, json={"email": email})
            statuses.append(answer.status_code)
        assert statuses == [202] * 5 + [429]
        for c in clients:
            await c.aclose()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        for f in logs:
            f.close()


async def test_link_posts_are_limited_per_address_too(base_env):
    limit = 2
    async with in_process(_settings(base_env, sign_in_per_ip=limit), fresh_address()) as client:
        for kind in ("magic", "password/reset", "claim"):
            body = {"password": "a long enough password"} if kind == "password/reset" else {}
            codes = [(await client.post(f"/portal/ws-any/{kind}/not.a-link", headers=JSON, json=body)).status_code
                     for _ in range(limit + 1)]
            assert codes == [410] * limit + [429], kind
