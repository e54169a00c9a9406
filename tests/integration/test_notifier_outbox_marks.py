"""The outbox's bookkeeping: a published outcome is marked so in the ledger together with
others (by the retry loop, and at shutdown), not one round trip per batch, and a marked
outcome is not published a second time by the outbox."""

from __future__ import annotations

import pytest

from services.notifier.ledger import delivery_id_for
from tests.helpers import poll_until, unique
from tests.integration.test_notifier import invite_sent, notifier_settings, outcomes_for, publish, recording, running

pytestmark = pytest.mark.timeout(120)


async def _published(pg_pool, event) -> bool:
    return bool(await pg_pool.fetchval(
        "SELECT published FROM notifier_deliveries WHERE delivery_id = $1", delivery_id_for(event.event_id, "email")
    ))


async def _async(value):
    return value


async def test_outcomes_are_marked_by_the_retry_loop_and_not_published_again(
    base_env, topic_names, smtp_server, pg_pool, kafka_bootstrap
):
    settings = notifier_settings(base_env, smtp_server.port, notifier_retry_poll_seconds=0.1,
                                 notifier_outbox_grace_seconds=0.5)
    ana = invite_sent(unique("ws"), f"{unique('ana')}@example.com")
    async with recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes, running(settings):
        await publish(kafka_bootstrap, topic_names["access"], ana)
        await smtp_server.wait_for(ana.data.email)
        [outcome] = await poll_until(lambda: _async(outcomes_for(outcomes, ana)), what="Ana's outcome")
        assert outcome["status"] == "sent"
        await poll_until(lambda: _published(pg_pool, ana), what="the outcome marked published")
        # Polls of the retry loop after the mark, past the outbox's grace: still the one outcome.
        await poll_until(
            lambda: pg_pool.fetchval(
                "SELECT updated_at < now() - interval '1 second' FROM notifier_deliveries WHERE delivery_id = $1",
                delivery_id_for(ana.event_id, "email"),
            ),
            what="the grace passed",
        )
    assert len(outcomes_for(outcomes, ana)) == 1
    [record] = [o for o in outcomes if o["event_id"] == str(ana.event_id)]
    assert record["key"] == str(ana.account_id).encode()


async def test_a_stopping_notifier_marks_what_it_published(base_env, topic_names, smtp_server, pg_pool, kafka_bootstrap):
    # The retry loop polls once at the start and then not for an hour: only the shutdown marks.
    settings = notifier_settings(base_env, smtp_server.port, notifier_retry_poll_seconds=3600.0)
    ana = invite_sent(unique("ws"), f"{unique('ana')}@example.com")
    async with recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes:
        async with running(settings):
            await publish(kafka_bootstrap, topic_names["access"], ana)
            await poll_until(lambda: _async(outcomes_for(outcomes, ana)), what="Ana's outcome")
            assert not await _published(pg_pool, ana)
        assert await _published(pg_pool, ana)
