"""A message that cannot be rendered is parked on the dead-letter topic with the reason, and
the consumer carries on with the next one (on the same partition, right behind it)."""

from __future__ import annotations

import pytest

from services.notifier import seams
from tests.helpers import unique, wait_for_dead_letter
from tests.integration.test_notifier import invite_sent, notifier_settings, publish, running

pytestmark = pytest.mark.timeout(90)


async def test_a_message_that_cannot_be_rendered_is_dead_lettered_and_the_next_is_sent(
    base_env, smtp_server, kafka_bootstrap, topic_names, monkeypatch
):
    ws = unique("ws")
    poison, next_one = invite_sent(ws, f"{unique('po')}@example.com"), invite_sent(ws, f"{unique('ok')}@example.com")
    real = seams.messages_for

    def messages_for(event, **kwargs):
        if event.event_id == poison.event_id:  # a template bug that only this event's data triggers
            raise KeyError("brand_colour")
        return real(event, **kwargs)

    monkeypatch.setattr(seams, "messages_for", messages_for)
    async with running(notifier_settings(base_env, smtp_server.port)):
        await publish(kafka_bootstrap, topic_names["access"], poison,
                      (poison.key, next_one.model_dump_json().encode(), next_one.headers))
        await smtp_server.wait_for(next_one.data.email)
        record, headers = await wait_for_dead_letter(kafka_bootstrap, topic_names["dlq"])
    assert record.value == poison.model_dump_json().encode() and record.key == poison.key
    assert headers["dlq-consumer"] == "notifier" and headers["dlq-category"] == "unprocessable"
    assert headers["dlq-reason"].startswith("RenderFailed: cannot render InviteSent: KeyError")
    assert not smtp_server.recorder.to(poison.data.email)
