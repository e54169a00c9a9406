"""The notifier sending through Postmark (a local stub that checks requests as Postmark documents
them): the delivery id travels in Metadata, and a 406 inactive recipient is suppressed."""

from __future__ import annotations

import pytest

from services.notifier.ledger import delivery_id_for
from tests.helpers import poll_until, unique
from tests.integration.provider_stubs import postmark_stub
from tests.integration.test_notifier import invite_sent, notifier_settings, outcomes_for, publish, recording, running

pytestmark = pytest.mark.timeout(90)

INACTIVE = {"ErrorCode": 406, "Message": "You tried to send to recipient(s) that have been marked as inactive."}


async def test_an_inactive_recipient_is_failed_once_then_held(base_env, pg_pool, kafka_bootstrap, topic_names):
    ws = unique("ws")
    address = f"{unique('ina')}@example.com"
    first, second = invite_sent(ws, address), invite_sent(ws, address)
    async with postmark_stub() as stub, recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes:
        settings = notifier_settings(base_env, 1, email_provider="postmark", postmark_api_url=stub.base_url,
                                     postmark_server_token=stub.server_token)
        async with running(settings):
            stub.answer_next(422, INACTIVE)
            await publish(kafka_bootstrap, topic_names["access"], first)
            [failed] = await poll_until(lambda: _async(outcomes_for(outcomes, first)), what="the failed outcome")
            await publish(kafka_bootstrap, topic_names["access"], second)
            [held] = await poll_until(lambda: _async(outcomes_for(outcomes, second)), what="the held outcome")
            other = invite_sent(ws, f"{unique('ok')}@example.com")
            await publish(kafka_bootstrap, topic_names["access"], other)
            [sent] = await poll_until(lambda: _async(outcomes_for(outcomes, other)), what="the sent outcome")
    assert (failed["status"], failed["provider"], failed["attempt"]) == ("failed", "postmark", 1)
    assert "406" in failed["error"] and "406" in failed["held"]
    assert held["status"] == "suppressed" and "inactive" in held["error"] and held["held"]
    assert sent["status"] == "sent" and sent["provider"] == "postmark"
    # Postmark was asked once for the inactive address (refused), never again; the other got through
    # with our delivery id in Metadata, which the webhooks bring back.
    [accepted] = stub.accepted
    assert accepted["To"] == other.data.email
    assert accepted["Metadata"] == {"delivery_id": str(delivery_id_for(other.event_id, "client:email"))}
    reason = await pg_pool.fetchval("SELECT reason FROM notifier_suppressions WHERE workspace = $1 AND address = $2",
                                    ws, address)
    assert "406" in reason


async def _async(value):
    return value
