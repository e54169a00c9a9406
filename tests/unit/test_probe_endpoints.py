"""A background process's probe port: /metrics, /healthz, and /readyz from its last heartbeat."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from services.common.heartbeat import LocalHealth
from services.common.metrics import serve_probes


def _get(server, path: str) -> tuple[int, bytes]:
    host, port = server.server_address[:2]
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def probes():
    registry, health = CollectorRegistry(), LocalHealth()
    Counter("probe_test_things", "Things", registry=registry).inc(3)
    server = serve_probes("127.0.0.1", 0, registry, health)
    yield server, health
    server.shutdown()
    server.server_close()


def test_healthz_answers_while_the_process_is_up(probes):
    server, _ = probes
    assert _get(server, "/healthz") == (200, b'{"status": "ok"}')


def test_metrics_still_served_on_the_same_port(probes):
    server, _ = probes
    status, body = _get(server, "/metrics")
    assert status == 200 and b"probe_test_things_total 3.0" in body


def test_readyz_not_ready_before_the_first_beat(probes):
    server, _ = probes
    status, body = _get(server, "/readyz")
    assert status == 503 and json.loads(body)["checks"] == {"loop": "starting"}


def test_readyz_ready_when_the_beat_found_every_dependency(probes):
    server, health = probes
    health.record({"database": True, "broker": True})
    status, body = _get(server, "/readyz")
    assert status == 200
    assert json.loads(body) == {"status": "ready", "checks": {"loop": "ok", "database": "ok", "broker": "ok"}}


def test_readyz_names_the_dependency_that_failed(probes):
    server, health = probes
    health.record({"database": True, "broker": False})
    status, body = _get(server, "/readyz")
    assert status == 503 and json.loads(body)["checks"]["broker"] == "unreachable"


def test_a_stale_beat_is_not_ready():
    # The event loop stopped turning: the last beat, however good, grows old.
    health = LocalHealth()
    health.record({"database": True})
    assert health.readiness()[0]
    ready, report = health.readiness(stale_after=-1.0)
    assert not ready and report["loop"].startswith("no beat for")


def test_unknown_paths_are_404(probes):
    server, _ = probes
    assert _get(server, "/nope")[0] == 404
