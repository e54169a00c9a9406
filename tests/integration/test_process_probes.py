"""`porchlight projector`, `relay` and `autoinvite` serve /healthz and /readyz on METRICS_HOST:METRICS_PORT,
so Kubernetes can probe them over HTTP (deploy/k8s/*.yaml)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from deploy.embedded import free_port
from tests.helpers import poll_until


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def _poll(url: str, want: int) -> tuple[int, dict]:
    async def answered() -> tuple[int, dict] | None:
        try:
            got = await asyncio.to_thread(_get, url)
        except OSError:
            return None  # not listening yet
        return got if got[0] == want else None

    return await poll_until(answered, timeout=60, interval=0.2, what=f"{url} to answer {want}")


# What each process's /readyz checks besides its event loop (the heartbeat's probes).
CHECKS = {"projector": {"database", "broker"}, "relay": {"database", "broker"}, "autoinvite": {"database"}}


@pytest.mark.parametrize("process", sorted(CHECKS))
async def test_background_process_serves_health_and_readiness(base_env, process):
    port = free_port()
    env = {**os.environ, **base_env, "METRICS_PORT": str(port), "METRICS_HOST": "127.0.0.1",
           "RELAY_NAME": f"probe-test-{port}", "PROJECTOR_GROUP_ID": f"probe-test-{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "deploy.cli", process], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        assert (await _poll(f"{base}/healthz", 200))[1] == {"status": "ok"}
        status, body = await _poll(f"{base}/readyz", 200)
        assert body["checks"] == {"loop": "ok", **{name: "ok" for name in CHECKS[process]}}
    finally:
        proc.terminate()
        proc.wait(30)
