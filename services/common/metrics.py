"""Prometheus metrics. The API serves them at /metrics; a background process serves them
on METRICS_HOST:METRICS_PORT when the port is set (each process has its own registry, the
default one), beside /healthz (the process is up) and /readyz (its event loop beats and its
dependencies answer: heartbeat.HEALTH), so Kubernetes can probe it over HTTP.

Every series is defined here, so every process imports them all; `serve_only` (called by
each process's entry point) drops the ones another process updates, so a scrape never shows
the relay's counters standing at zero on the API.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import ThreadingHTTPServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, MetricsHandler

from services.common.heartbeat import HEALTH, LocalHealth

INVITES = Counter("porchlight_invites_total", "Invite commands by outcome", ["outcome"])
CLAIMS = Counter("porchlight_claims_total", "Claim attempts by outcome", ["outcome"])
COMMIT_BATCH = Histogram(
    "porchlight_commit_batch_commands", "Commands saved per event-store transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
RELAY_PUBLISHED = Counter("porchlight_relay_published_total", "Events the relay published and the broker acknowledged")
RELAY_RETRIES = Counter("porchlight_relay_retries_total", "Times the relay backed off because the broker or PostgreSQL was away")
RELAY_POSITION = Gauge("porchlight_relay_position", "Notification-log position the relay has stored")
BROKER_RESETS = Counter(
    "porchlight_broker_resets_total",
    "Times the relay found the broker had lost events it acknowledged, and re-published the log",
)
CONSUMER_REWINDS = Counter(
    "porchlight_consumer_rewinds_total",
    "Times a consumer process re-read its partitions from the beginning after a broker reset",
    ["process"],
)
DELIVERIES = Counter("porchlight_deliveries_total", "Notifier deliveries by channel and status", ["channel", "status"])
DELIVERY_REPEATS = Counter(
    "porchlight_delivery_repeats_total",
    "Deliveries the ledger had already handled (redelivered or re-published events): nothing sent again",
    ["channel"],
)
PROJECTED = Counter("porchlight_projected_total", "Projector events by result", ["result"])
PROJECTION_LAG = Gauge(
    "porchlight_projection_lag_events",
    "Event-store positions between the log's head and the highest one the projection applied",
    ["projection"],
)
PROJECTOR_BATCH_FALLBACKS = Counter(
    "porchlight_projector_batch_fallbacks_total",
    "Batches the projector rolled back and applied again one message at a time (a poison message, a gap, an outage)",
)
PROJECTOR_GAPS = Counter(
    "porchlight_projector_gaps_repaired_total",
    "Times an aggregate's version jumped (a lost message) and the projector applied the missing events from the store",
)
DEAD_LETTERS = Counter(
    "porchlight_dead_letters_total", "Messages a consumer moved to the dead-letter topic", ["consumer", "category"]
)
CONSUMER_RETRIES = Counter(
    "porchlight_consumer_retries_total", "Failed message handlings left for redelivery", ["consumer", "category"]
)


# Which process updates which series. A series no process claims is served by every process.
OWNERS: dict[str, tuple] = {
    "api": (INVITES, CLAIMS, COMMIT_BATCH),
    "relay": (RELAY_PUBLISHED, RELAY_RETRIES, RELAY_POSITION, BROKER_RESETS),
    "notifier": (DELIVERIES, DELIVERY_REPEATS, DEAD_LETTERS, CONSUMER_RETRIES, CONSUMER_REWINDS),
    "autoinvite": (DEAD_LETTERS, CONSUMER_RETRIES, CONSUMER_REWINDS),
    "projector": (PROJECTED, PROJECTION_LAG, PROJECTOR_GAPS, PROJECTOR_BATCH_FALLBACKS,
                  DEAD_LETTERS, CONSUMER_RETRIES, CONSUMER_REWINDS),
}


def serve_only(process: str, registry: CollectorRegistry = REGISTRY) -> None:
    """Leave in `registry` only the series `process` updates (and the unclaimed ones)."""
    mine = set(OWNERS.get(process, ()))
    for collector in {c for owned in OWNERS.values() for c in owned} - mine:
        try:
            registry.unregister(collector)
        except KeyError:  # already gone: called twice
            pass


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve_if_configured(port: int | None, host: str = "127.0.0.1") -> ThreadingHTTPServer | None:
    if port:
        return serve_probes(host, port)
    return None


def serve_probes(
    host: str, port: int, registry: CollectorRegistry = REGISTRY, health: LocalHealth = HEALTH
) -> ThreadingHTTPServer:
    """/metrics, /healthz and /readyz on host:port, from a daemon thread (port 0: any free one)."""

    class Handler(MetricsHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._json(200, {"status": "ok"})
            elif path == "/readyz":
                ready, report = health.readiness()
                self._json(200 if ready else 503, {"status": "ready" if ready else "not ready", "checks": report})
            elif path == "/metrics":
                super().do_GET()
            else:
                self._json(404, {"status": "not found"})

        def _json(self, status: int, body: dict) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - probes every few seconds: no line each
            pass

    Handler.registry = registry
    server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
    return server
