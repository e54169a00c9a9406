"""Each process serves the series it updates, not another process's standing at zero."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from services.common import metrics


def _everything() -> CollectorRegistry:
    # A private registry holding every series, as every process's default one does at import.
    registry = CollectorRegistry()
    for collector in {c for owned in metrics.OWNERS.values() for c in owned}:
        registry.register(collector)
    return registry


def test_the_api_serves_its_own_series_only():
    registry = _everything()
    metrics.serve_only("api", registry)
    text = generate_latest(registry).decode()
    assert "porchlight_invites_total" in text and "porchlight_commit_batch_commands" in text
    for foreign in ("porchlight_relay_", "porchlight_deliveries_", "porchlight_projected_"):
        assert foreign not in text


def test_the_relay_serves_its_own_series_only_even_when_asked_twice():
    registry = _everything()
    metrics.serve_only("relay", registry)
    metrics.serve_only("relay", registry)
    text = generate_latest(registry).decode()
    assert "porchlight_relay_published_total" in text and "porchlight_relay_position" in text
    assert "porchlight_invites_total" not in text and "porchlight_deliveries_total" not in text


def test_a_series_no_process_claims_is_served_everywhere():
    registry = _everything()
    shared = metrics.Counter("porchlight_test_unclaimed_total", "A series no process claims", registry=registry)
    metrics.serve_only("notifier", registry)
    shared.inc()
    text = generate_latest(registry).decode()
    assert "porchlight_test_unclaimed_total 1.0" in text and "porchlight_deliveries_total" in text
