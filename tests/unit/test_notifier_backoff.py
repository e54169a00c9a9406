"""The retry schedule's backoff: doubling, capped, jittered."""

from services.notifier.retries import backoff


def test_backoff_doubles_from_the_base_with_jitter_and_stops_at_the_cap():
    for attempt, full in ((1, 30), (2, 60), (3, 120), (6, 960)):
        waits = [backoff(attempt, 30, 3600) for _ in range(200)]
        assert all(full * 0.5 <= w <= full for w in waits)
        assert max(waits) - min(waits) > full * 0.2  # jittered, not one value for everyone
    assert all(backoff(20, 30, 3600) <= 3600 for _ in range(50))
