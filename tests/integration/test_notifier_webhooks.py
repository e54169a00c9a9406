"""Postmark's delivery and bounce webhooks, the suppression list and the account view.

Everything runs for real: the API (webhook and account view) in-process, the notifier and the
projector as their processes run, the broker, PostgreSQL and an SMTP server. Envelopes are
published as the relay publishes them.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import timedelta

import pytest

from contracts.access import INVITE_SENT, PASSWORD_RESET_REQUESTED
from projections.main import run as run_projector
from services.common.settings import ApiSettings, ProjectorSettings
from services.notifier.ledger import delivery_id_for
from tests.helpers import poll_until, unique
from tests.integration.conftest import auth, serve
from tests.integration.envelopes import AccountStory
from tests.integration.test_notifier import notifier_settings, outcomes_for, publish, recording, running

pytestmark = pytest.mark.timeout(120)

USER, PASSWORD = "postmark", "hook-password-" + "p" * 20


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def delivery(delivery_id: uuid.UUID, email: str) -> dict:
    """Postmark's Delivery webhook body, as its documentation shows it."""
    return {"RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound", "MessageID": str(uuid.uuid4()),
            "Recipient": email, "Tag": "", "DeliveredAt": "2030-01-05T16:33:54.9070259Z",
            "Details": "smtp;250 2.0.0 OK", "Metadata": {"delivery_id": str(delivery_id)}}


def bounce(delivery_id: uuid.UUID, email: str, *, kind: str = "HardBounce", inactive: bool = True) -> dict:
    """Postmark's Bounce webhook body, as its documentation shows it."""
    return {"RecordType": "Bounce", "ID": 42, "Type": kind, "TypeCode": 1, "Name": "Hard bounce", "Tag": "",
            "MessageID": str(uuid.uuid4()), "Metadata": {"delivery_id": str(delivery_id)}, "ServerID": 23,
            "MessageStream": "outbound", "Description": "The server was unable to deliver your message.",
            "Details": "smtp;550 5.1.1 user unknown", "Email": email, "From": "portal@example.com",
            "BouncedAt": "2030-01-05T16:33:54.9070259Z", "DumpAvailable": False, "Inactive": inactive,
            "CanActivate": True, "Subject": "Invitation"}


@pytest.fixture
async def projector(base_env):
    settings = ProjectorSettings(**{k.lower(): v for k, v in base_env.items()}, projector_group_id=unique("projector"))
    task = asyncio.create_task(run_projector(settings))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_webhooks_mark_deliveries_and_a_hard_bounce_holds_mail_until_staff_resend(
    base_env, smtp_server, pg_pool, kafka_bootstrap, topic_names, projector, staff_token
):
    ws = unique("ws")
    story = AccountStory(ws, f"{unique('ana')}@example.com")
    created, invited = story.created(), story.invite_sent()
    sent_id = delivery_id_for(invited.event_id, "client:email")
    api_settings = ApiSettings(**{k.lower(): v for k, v in base_env.items()},
                               postmark_webhook_user=USER, postmark_webhook_password=PASSWORD)
    notifier = notifier_settings(base_env, smtp_server.port, notifier_outbox_grace_seconds=0.5,
                                 notifier_retry_poll_seconds=0.05)
    token = auth(staff_token(ws))
    view_path = f"/v1/workspaces/{ws}/accounts/{story.account_id}"

    async with serve(api_settings) as api, recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes, \
            running(notifier):

        async def view_when(check, what: str) -> dict:
            async def probe():
                response = await api.get(view_path, headers=token)
                return response.json() if response.status_code == 200 and check(response.json()) else None

            return await poll_until(probe, what=what)

        await publish(kafka_bootstrap, topic_names["access"], created, invited)
        await smtp_server.wait_for(story.email)
        await poll_until(lambda: _async(outcomes_for(outcomes, invited)), what="the sent outcome")

        # Refused without the configured credentials.
        assert (await api.post("/webhooks/postmark", json=delivery(sent_id, story.email))).status_code == 401
        wrong = await api.post("/webhooks/postmark", json=delivery(sent_id, story.email), headers=basic(USER, "nope"))
        assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"

        answer = await api.post("/webhooks/postmark", json=delivery(sent_id, story.email), headers=basic(USER, PASSWORD))
        assert answer.status_code == 200 and answer.json() == {"status": "recorded"}
        view = await view_when(lambda v: v["deliveries"] and v["deliveries"][0]["status"] == "delivered", "delivered")
        assert view["deliveries"][0]["attempt"] == 1 and view["email_held"] is None

        answer = await api.post("/webhooks/postmark", json=bounce(sent_id, story.email), headers=basic(USER, PASSWORD))
        assert answer.json() == {"status": "recorded"}
        view = await view_when(lambda v: v["deliveries"][0]["status"] == "bounced", "bounced")
        assert "HardBounce" in view["deliveries"][0]["error"] and "HardBounce" in view["email_held"]
        # A late Delivery report does not undo the bounce.
        await api.post("/webhooks/postmark", json=delivery(sent_id, story.email), headers=basic(USER, PASSWORD))

        # Held: a password reset to the address is not sent, and says why.
        reset = story.other(PASSWORD_RESET_REQUESTED, {
            "nonce": "r-" + uuid.uuid4().hex, "expires_at": (story.at + timedelta(days=1)).isoformat(),
            "email": story.email, "name": story.name, "sender": {"workspace_name": "Acme", "sender_name": "Acme"},
        })
        await publish(kafka_bootstrap, topic_names["access"], reset)
        # (The outbox may publish an outcome a second time; consumers dedupe.)
        held, *again = await poll_until(lambda: _async(outcomes_for(outcomes, reset)), what="the reset's outcome")
        assert all(o == held for o in again)
        assert held["status"] == "suppressed" and "HardBounce" in held["error"] and held["held"]
        view = await view_when(lambda v: v["deliveries"][0]["status"] == "suppressed", "suppressed")
        assert "HardBounce" in view["email_held"]

        # Staff resend: the explicit "try again" clears the hold, and the invite goes out.
        resend = story._envelope(INVITE_SENT, uuid.uuid4(), 1, {
            **invited.data.model_dump(mode="json"), "nonce": "s-" + uuid.uuid4().hex, "method": "resend"},
            story.at + timedelta(minutes=5))
        await publish(kafka_bootstrap, topic_names["access"], resend)
        await smtp_server.wait_for(story.email, count=2)
        view = await view_when(lambda v: v["deliveries"][0]["status"] == "sent", "the resend sent")
        assert view["email_held"] is None
        statuses = [d["status"] for d in view["deliveries"]]
        assert statuses == ["sent", "suppressed", "bounced"]

    assert len(smtp_server.recorder.to(story.email)) == 2
    assert await pg_pool.fetchval("SELECT count(*) FROM notifier_suppressions WHERE workspace = $1", ws) == 0
    row = await pg_pool.fetchrow("SELECT status, published FROM notifier_deliveries WHERE delivery_id = $1", sent_id)
    assert tuple(row) == ("bounced", True)


async def test_the_webhook_is_refused_when_no_credentials_are_configured(api):
    answer = await api.post("/webhooks/postmark", json=delivery(uuid.uuid4(), "a@example.com"),
                            headers=basic("", ""))
    assert answer.status_code == 403 and answer.json()["code"] == "webhook_disabled"


async def test_a_report_about_a_message_that_is_not_ours_is_acknowledged_and_ignored(base_env):
    settings = ApiSettings(**{k.lower(): v for k, v in base_env.items()},
                           postmark_webhook_user=USER, postmark_webhook_password=PASSWORD)
    async with serve(settings) as api:
        answer = await api.post("/webhooks/postmark", json=bounce(uuid.uuid4(), "x@example.com"),
                                headers=basic(USER, PASSWORD))
    assert answer.status_code == 200 and answer.json() == {"status": "ignored"}


async def _async(value):
    return value
