"""Retries, abandonment and permanent failures, through the real broker, PostgreSQL and an SMTP
server that answers each address as scripted (451 = try later, 550 = refused for good)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from contracts.access import InviteSentV1, Sender
from deploy.embedded import free_port
from services.notifier.ledger import delivery_id_for
from tests.helpers import SmtpRecorder, poll_until, unique
from tests.integration.test_notifier import invite_sent, notifier_settings, outcomes_for, publish, recording, running

pytestmark = pytest.mark.timeout(90)

FAST = {"notifier_retry_base_seconds": 0.05, "notifier_retry_max_seconds": 0.2, "notifier_retry_poll_seconds": 0.05}


class Scripted(SmtpRecorder):
    """Accepts mail, except to addresses with replies queued (or a reply for every attempt)."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: dict[str, list[str]] = {}
        self.always: dict[str, str] = {}
        self.attempts: dict[str, int] = {}

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        for rcpt in envelope.rcpt_tos:
            self.attempts[rcpt] = self.attempts.get(rcpt, 0) + 1
            if self.queued.get(rcpt):
                return self.queued[rcpt].pop(0)
            if rcpt in self.always:
                return self.always[rcpt]
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp() -> Iterator[tuple[Scripted, int]]:
    handler, port = Scripted(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def with_team(event: InviteSentV1, team: str) -> InviteSentV1:
    sender: Sender = event.data.sender.model_copy(update={"team_notify_email": team})
    return event.model_copy(update={"data": event.data.model_copy(update={"sender": sender})})


async def _statuses(outcomes, event) -> list[tuple[str, int]]:
    return [(o["status"], o["attempt"]) for o in outcomes_for(outcomes, event)]


async def test_a_retry_waits_in_postgresql_and_blocks_no_other_account(base_env, smtp, pg_pool, kafka_bootstrap,
                                                                        topic_names):
    handler, port = smtp
    ws = unique("ws")
    ana, ben = invite_sent(ws, f"{unique('ana')}@example.com"), invite_sent(ws, f"{unique('ben')}@example.com")
    handler.always[ana.data.email] = "451 4.3.0 Mailbox busy, try again later"
    # Ben on Ana's partition, right behind her: a handler that slept through her backoff would hold him.
    settings = notifier_settings(base_env, port, notifier_retry_base_seconds=3600)
    async with recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes, running(settings):
        await publish(kafka_bootstrap, topic_names["access"], ana, (ana.key, ben.model_dump_json().encode(), ben.headers))
        await poll_until(lambda: _async(handler.to(ben.data.email)), what="Ben's invite")
        [retrying] = await poll_until(lambda: _async(outcomes_for(outcomes, ana)), what="Ana's outcome")
    assert (retrying["status"], retrying["attempt"]) == ("retrying", 1)
    assert retrying["error"].startswith("451")
    row = await pg_pool.fetchrow(
        "SELECT status, attempt, next_attempt_at > now() + interval '20 minutes' AS later, lease_until"
        " FROM notifier_deliveries WHERE delivery_id = $1", delivery_id_for(ana.event_id, "client:email"))
    assert (row["status"], row["attempt"], row["later"], row["lease_until"]) == ("retrying", 1, True, None)


async def test_transient_failures_are_retried_until_sent(base_env, smtp, pg_pool, kafka_bootstrap, topic_names):
    handler, port = smtp
    ana = invite_sent(unique("ws"), f"{unique('ana')}@example.com")
    handler.queued[ana.data.email] = ["451 4.3.0 Try again later", "421 4.4.2 Connection timed out"]
    async with recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes:
        async with running(notifier_settings(base_env, port, **FAST)):
            await publish(kafka_bootstrap, topic_names["access"], ana)
            await poll_until(lambda: _async(handler.to(ana.data.email)), what="the invite, at last")
            await poll_until(lambda: _async(("sent", 3) in [(o["status"], o["attempt"]) for o in outcomes_for(outcomes, ana)]),
                             what="the sent outcome")
            # The same event again (the relay re-publishing): nothing is sent twice.
            await publish(kafka_bootstrap, topic_names["access"], ana, ana)
            await poll_until(lambda: _async(len(outcomes_for(outcomes, ana)) >= 4), what="a repeat's outcome")
    statuses = await _statuses(outcomes, ana)
    assert statuses[:3] == [("retrying", 1), ("retrying", 2), ("sent", 3)]
    assert set(statuses[3:]) == {("sent", 3)}
    assert handler.attempts[ana.data.email] == 3 and len(handler.to(ana.data.email)) == 1
    assert len({o["delivery_id"] for o in outcomes_for(outcomes, ana)}) == 1
    row = await pg_pool.fetchrow("SELECT status, attempt FROM notifier_deliveries WHERE delivery_id = $1",
                                 delivery_id_for(ana.event_id, "client:email"))
    assert tuple(row) == ("sent", 3)


async def test_abandoned_after_the_last_attempt_and_the_team_is_told(base_env, smtp, pg_pool, kafka_bootstrap,
                                                                     topic_names):
    handler, port = smtp
    team = f"{unique('team')}@example.com"
    ana = with_team(invite_sent(unique("ws"), f"{unique('ana')}@example.com"), team)
    handler.always[ana.data.email] = "451 4.3.0 Try again later"
    settings = notifier_settings(base_env, port, notifier_max_attempts=3, **FAST)
    async with recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes, running(settings):
        await publish(kafka_bootstrap, topic_names["access"], ana)
        [notice] = await poll_until(lambda: _async(handler.to(team)), what="the team's notice")
        await poll_until(lambda: _async(len(outcomes_for(outcomes, ana)) >= 4), what="every outcome")
    client = str(delivery_id_for(ana.event_id, "client:email"))
    statuses = [(o["status"], o["attempt"]) for o in outcomes_for(outcomes, ana) if o["delivery_id"] == client]
    assert statuses == [("retrying", 1), ("retrying", 2), ("abandoned", 3)]
    [abandoned] = [o for o in outcomes_for(outcomes, ana) if o["status"] == "abandoned"]
    assert "3 attempts" in abandoned["error"] and "451" in abandoned["error"]
    assert handler.attempts[ana.data.email] == 3 and not handler.to(ana.data.email)
    assert ana.data.email in notice.part("plain")
    team_outcomes = [o for o in outcomes_for(outcomes, ana) if o["delivery_id"] != client]
    assert [(o["status"], o["attempt"]) for o in team_outcomes] == [("sent", 1)]
    assert team_outcomes[0]["delivery_id"] == str(delivery_id_for(ana.event_id, "team:failed:client:email"))


async def test_a_permanent_failure_is_recorded_once_never_retried(base_env, smtp, pg_pool, kafka_bootstrap,
                                                                  topic_names):
    handler, port = smtp
    team = f"{unique('team')}@example.com"
    ana = with_team(invite_sent(unique("ws"), f"{unique('ana')}@example.com"), team)
    handler.always[ana.data.email] = "550 5.1.1 No such user here"
    async with recording(kafka_bootstrap, topic_names["deliveries"]) as outcomes:
        async with running(notifier_settings(base_env, port, **FAST)):
            await publish(kafka_bootstrap, topic_names["access"], ana)
            await poll_until(lambda: _async(handler.to(team)), what="the team's notice")
            client = str(delivery_id_for(ana.event_id, "client:email"))
            await poll_until(lambda: _async([o for o in outcomes_for(outcomes, ana) if o["delivery_id"] == client]),
                             what="the failed outcome")
    [failed] = [o for o in outcomes_for(outcomes, ana) if o["delivery_id"] == client]
    assert (failed["status"], failed["attempt"]) == ("failed", 1)
    assert failed["error"].startswith("550") and "No such user" in failed["error"]
    assert handler.attempts[ana.data.email] == 1
    row = await pg_pool.fetchrow("SELECT status, attempt, next_attempt_at FROM notifier_deliveries"
                                 " WHERE delivery_id = $1", delivery_id_for(ana.event_id, "client:email"))
    # Nothing scheduled: the retry loop takes only 'retrying' rows and expired leases.
    assert tuple(row) == ("failed", 1, None)


async def _async(value):
    return value
