"""Prometheus metrics. The API serves them at /metrics; a background process serves them
on METRICS_PORT when that is set (each process has its own registry, the default one)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

INVITES = Counter("porchlight_invites_total", "Invite commands by outcome", ["outcome"])
CLAIMS = Counter("porchlight_claims_total", "Claim attempts by outcome", ["outcome"])
COMMIT_BATCH = Histogram(
    "porchlight_commit_batch_commands", "Commands saved per event-store transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
RELAY_PUBLISHED = Counter("porchlight_relay_published_total", "Events the relay published and the broker acknowledged")
RELAY_RETRIES = Counter("porchlight_relay_retries_total", "Times the relay backed off because the broker or PostgreSQL was away")
RELAY_POSITION = Gauge("porchlight_relay_position", "Notification-log position the relay has stored")
DELIVERIES = Counter("porchlight_deliveries_total", "Notifier deliveries by channel and status", ["channel", "status"])
PROJECTED = Counter("porchlight_projected_total", "Projector events by result", ["result"])
DEAD_LETTERS = Counter(
    "porchlight_dead_letters_total", "Messages a consumer moved to the dead-letter topic", ["consumer", "category"]
)
CONSUMER_RETRIES = Counter(
    "porchlight_consumer_retries_total", "Failed message handlings left for redelivery", ["consumer", "category"]
)


def serve_if_configured(port: int | None) -> None:
    if port:
        start_http_server(port, addr="127.0.0.1")
