"""Delivering an InviteSent event: email → delivery outcome (the typed handlers are in handlers.py).

Idempotency lives in the ledger (see ledger.py): each (event, channel) is sent at most
once however often Kafka redelivers or the relay re-publishes. The offset is committed
only after the handler returns (ack policy in main.py), so a crash or a failed send
brings the event back; the ledger makes that safe.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any

import asyncpg

from contracts import DeliveryOutcomeV1
from contracts.access import InviteSent, InviteSentV1
from services.common.consumer_errors import Outage
from services.common.metrics import DELIVERIES, DELIVERY_REPEATS
from services.common.settings import NotifierSettings
from services.messages import render_invite
from services.notifier import ledger
from services.notifier.links import claim_link
from services.notifier.smtp import SEND_ERRORS, SmtpSender

log = logging.getLogger("porchlight.notifier")


class DeliveryFailed(Outage):
    """A provider refused; raised so the event is redelivered (ack policy NACK_ON_ERROR)."""


class Notifier:
    """What the handler needs: settings, the provider, the outcome publisher and the pool."""

    def __init__(self, settings: NotifierSettings, sender: SmtpSender, outcomes: Any) -> None:
        self.settings = settings
        self.sender = sender
        self.outcomes = outcomes  # the FastStream publisher of porchlight.deliveries.v1
        self.pool: asyncpg.Pool | None = None  # attached by main.run once connected

    async def deliver_invite(self, event: InviteSentV1) -> None:
        invite = event.data  # validated against the contract before the handler ran
        failed: list[DeliveryOutcomeV1] = []
        for channel in dict.fromkeys(invite.channels):
            outcome = await self._deliver(event, invite, channel)
            # Published on every pass, also for skipped duplicates: a crash after commit and
            # before publish must not lose the outcome; consumers dedupe on delivery_id.
            await self.outcomes.publish(outcome, key=outcome.key)
            if outcome.status == "failed":
                failed.append(outcome)
        if failed:
            raise DeliveryFailed(f"{len(failed)} delivery(ies) of event {event.event_id} failed")

    async def _deliver(self, event: InviteSentV1, invite: InviteSent, channel: str) -> DeliveryOutcomeV1:
        assert self.pool is not None, "run() attaches the pool before the broker starts"
        started = time.monotonic()
        async with ledger.claim(
            self.pool,
            event_id=event.event_id,
            channel=channel,
            account_id=invite.account_id,
            workspace=event.workspace,
            provider=self.sender.provider if channel == "email" else "none",
        ) as entry:
            repeat = entry.done
            if repeat:
                pass  # sent (or suppressed) before: send nothing, re-publish the recorded outcome
            elif channel != "email":
                await entry.record("suppressed", error=f"no {channel} provider is configured")
            elif invite.expires_at <= datetime.now(timezone.utc):
                await entry.record("suppressed", error="the invitation expired before it could be sent")
            else:
                rendered = render_invite(invite, claim_link(self.settings, event.aggregate_id, invite))
                try:
                    message_id = await self.sender.send(
                        rendered, to=invite.email, from_name=rendered.from_name, delivery_id=entry.delivery_id
                    )
                except SEND_ERRORS as exc:
                    await entry.record("failed", error=f"{type(exc).__name__}: {exc}"[:500])
                else:
                    await entry.record("sent", message_id=message_id)
            outcome = entry.outcome()
        if repeat:
            DELIVERY_REPEATS.labels(channel).inc()
        else:
            DELIVERIES.labels(channel, outcome.status).inc()
        log.log(
            _level(outcome.status, repeat),
            "delivery event_id=%s account_id=%s channel=%s status=%s attempt=%d repeat=%s latency_ms=%.0f lag_ms=%.0f%s",
            event.event_id, outcome.account_id, channel, outcome.status, outcome.attempt, repeat,
            (time.monotonic() - started) * 1000,
            (datetime.now(timezone.utc) - event.occurred_at).total_seconds() * 1000,
            f" error={outcome.error!r}" if outcome.error else "",
        )
        return outcome


def _level(status: str, repeat: bool) -> int:
    """A repeat (redelivery, re-publish, a restart reading the topic again) sent nothing: DEBUG,
    or a restarted notifier logs a line per old invite that reads like a resend."""
    if repeat:
        return logging.DEBUG
    return logging.WARNING if status == "failed" else logging.INFO
