"""Delivering access events: what to send (seams.messages_for), claim, send, record, publish.

A fetched batch of events goes through four steps, each one round trip to PostgreSQL for the
whole batch (ledger.py): claim every message of the batch with a lease, send the claimed
ones outside any transaction (one account's messages in order, accounts in parallel), record
the outcomes, publish them to `porchlight.deliveries.v1`. A transient provider failure is
recorded as 'retrying' with its next attempt's time and the handler returns: the retry loop
(retries.py) sends it again later, so nothing sleeps in the handler and no other account's
message waits behind it. After the last attempt a delivery is 'abandoned'; a permanent
failure is 'failed' at once; either way the workspace's team is told (a team notice is itself
a delivery, queued in the same transaction and sent by the retry loop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg

from contracts.access import ACCOUNT_ACTIVATED, INVITE_SENT, AccessEventV1, parse_access_event
from services.common.metrics import DELIVERIES, DELIVERY_REPEATS
from services.common.settings import NotifierSettings
from services.notifier import ledger, seams, suppression, team
from services.notifier.ledger import Planned, Result, Row
from services.notifier.retries import backoff

log = logging.getLogger("porchlight.notifier")

TEAM_NOTICE = "team_notice"  # envelope key of a queued team notice (what it reports, not an event)


@dataclass
class Plan:
    """One event and the messages it sends; `raw` is its JSON as received (kept for retries)."""

    event: AccessEventV1
    raw: str
    messages: list[seams.OutgoingMessage] = field(default_factory=list)


@dataclass
class _Job:
    row: Row
    message: seams.OutgoingMessage
    team_address: str | None  # for the notice if this delivery fails for good
    event: AccessEventV1 | None


class Notifier:
    """What the handlers and the retry loop need: settings, providers, the outcome publisher, the pool."""

    def __init__(self, settings: NotifierSettings, outcomes: Any, *, email=None, sms=None) -> None:
        self.settings = settings
        self.outcomes = outcomes  # the FastStream publisher of porchlight.deliveries.v1
        # A plain producer for the same topic, attached by main.run: FastStream's publisher costs
        # a middleware chain per message and sends with no linger, so a batch's outcomes went as
        # many produce requests; this one batches them (kafka.create_producer's linger).
        self.producer: Any = None
        # Published outcomes not yet marked so in the ledger: marked together by the retry loop
        # (flush_marks), a round trip a second rather than one per batch. A mark lost in a crash
        # only has the outbox publish that outcome again (consumers dedupe on delivery_id).
        self._to_mark: list[Row] = []
        self._publishing: set[asyncio.Task] = set()  # batches' outcomes awaiting the broker's ack
        self.email = email if email is not None else seams.email_provider(settings)
        self.sms = sms if sms is not None else seams.sms_provider(settings)
        self.gmail: Any = None  # GmailRouter, attached by main.run once the pool exists
        self.pool: asyncpg.Pool | None = None  # attached by main.run once connected
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # whose leases
        self._key = settings.porchlight_secret_key.get_secret_value().encode()
        self._limit = asyncio.Semaphore(settings.notifier_send_concurrency)

    # What to send.

    async def team_addresses(self, events: list[AccessEventV1]) -> dict[str, str]:
        """The team address of each workspace whose events need it and do not carry it."""
        wanted = {e.workspace for e in events if e.type == ACCOUNT_ACTIVATED}
        return await team.addresses(self.pool, wanted) if wanted else {}

    def render(self, event: AccessEventV1, team_address: str | None = None) -> list[seams.OutgoingMessage]:
        """The messages `event` sends (raises what rendering raises: the caller dead-letters it)."""
        return seams.messages_for(
            event, secret_key=self._key, public_base_url=self.settings.public_base_url,
            team_notify_email=team_address,
        )

    # Deliver a batch.

    async def deliver(self, plans: list[Plan], team_settings: list[tuple[str, str | None]] = ()) -> None:
        assert self.pool is not None, "run() attaches the pool before the broker starts"
        now = datetime.now(timezone.utc)
        planned: list[Planned] = []
        by_id: dict[uuid.UUID, tuple[seams.OutgoingMessage, Plan]] = {}
        clears = []
        for plan in plans:
            event = plan.event
            if event.type == INVITE_SENT and event.data.method in suppression.EXPLICIT_RESENDS:
                clears.append((event.workspace, event.data.email))
            for message in plan.messages:
                item = self._planned(event, plan.raw, message, now)
                if item.delivery_id in by_id:
                    continue  # the same event twice in one batch
                by_id[item.delivery_id] = (message, plan)
                planned.append(item)
        if not planned and not team_settings:
            return
        async with self.pool.acquire() as conn:
            if team_settings or clears:
                async with conn.transaction():
                    await team.remember(conn, list(team_settings))
                    await suppression.clear(conn, clears)
            claimed, existing = await ledger.claim(
                conn, planned, owner=self.owner, lease_seconds=self.lease_for(len(planned))
            )
        to_send, decided = [], []
        for row in claimed:
            message, plan = by_id[row.delivery_id]
            if row.status == "sending":
                to_send.append(_Job(row, message, team.event_team_address(plan.event), plan.event))
            else:
                decided.append(row)  # suppressed before sending: an outcome already
        recorded = await self.send_and_record(to_send)
        repeats = [r for r in existing if r.status in ledger.OUTCOMES]
        await self.publish(decided + recorded, repeats, wait=False)
        self._log(decided + recorded, existing)

    def lease_for(self, count: int) -> float:
        """A lease long enough to send `count` messages even if every send takes its provider's
        whole timeout: a lease running out while we are still sending would have the retry loop
        send the message a second time."""
        s = self.settings
        rounds = -(-count // s.notifier_send_concurrency)
        return max(s.notifier_lease_seconds, rounds * max(s.smtp_timeout_seconds, s.provider_timeout_seconds) * 1.5)

    def _planned(self, event: AccessEventV1, raw: str, message: seams.OutgoingMessage, now: datetime) -> Planned:
        status, error = "sending", None
        if message.expires_at is not None and message.expires_at <= now:
            status, error = "suppressed", "the link or code expired before it could be sent"
        elif message.channel == "sms" and self.sms is None:
            status, error = "suppressed", "no SMS provider is configured"
        elif not message.to:
            status, error = "suppressed", f"no address for the {message.channel} channel"
        return Planned(
            delivery_id=ledger.delivery_id_for(event.event_id, message.slot), event_id=event.event_id,
            account_id=event.account_id or event.aggregate_id, workspace=event.workspace, channel=message.channel,
            slot=message.slot, provider=self._provider_name(message), recipient=message.to, envelope=raw,
            status=status, error=error,
        )

    def _provider_name(self, message: seams.OutgoingMessage) -> str:
        if message.channel == "sms":
            return self.sms.name if self.sms is not None else "none"
        return self.email.name

    # Send and record (also what the retry loop does with the rows it claims).

    async def send_and_record(self, jobs: list[_Job]) -> list[Row]:
        if not jobs:
            return []
        by_account: dict[uuid.UUID, list[_Job]] = defaultdict(list)
        for job in jobs:
            by_account[job.row.account_id].append(job)
        results: list[tuple[_Job, seams.SendResult]] = []

        async def in_order(account_jobs: list[_Job]) -> None:
            for job in account_jobs:  # one account's messages in the order they were asked for
                async with self._limit:
                    results.append((job, await self._send(job)))

        await asyncio.gather(*(in_order(j) for j in by_account.values()))
        return await self._record(results)

    async def _send(self, job: _Job) -> seams.SendResult:
        message, row = job.message, job.row
        try:
            if message.channel == "sms":
                return await self.sms.send(seams.Sms(to=message.to, body=message.sms or "", delivery_id=row.delivery_id))
            rendered = message.email
            email = seams.Email(
                to=message.to, from_address=self.settings.mail_from, from_name=rendered.from_name,
                reply_to=getattr(rendered, "reply_to", None), subject=rendered.subject, html=rendered.html,
                text=rendered.text, delivery_id=row.delivery_id,
            )
            if message.staff_id and message.audience == "client" and self.gmail is not None:
                return await self.gmail.send(email, workspace=row.workspace, staff_id=message.staff_id)
            return await self.email.send(email)
        except Exception as exc:  # noqa: BLE001 - a provider must not raise; if one does, try again later
            log.warning("delivery %s: the provider raised %s; will retry", row.delivery_id, type(exc).__name__)
            return seams.SendResult("transient", row.provider, f"{type(exc).__name__}: {exc}"[:500])

    async def _record(self, results: list[tuple[_Job, seams.SendResult]]) -> list[Row]:
        s = self.settings
        outcomes: list[Result] = []
        suppress, notices = [], []
        for job, result in results:
            row, message = job.row, job.message
            reason = result.reason
            if result.fell_back_from:
                reason = f"{result.fell_back_from} refused ({reason or 'no reason given'}); sent through {result.provider}"
            if result.status == "sent":
                outcomes.append(Result(row.delivery_id, "sent", result.provider, reason, result.provider_message_id))
                continue
            if result.status == "permanent":
                held = None
                if result.inactive_recipient and message.channel == "email":
                    held = f"{result.provider}: {reason}"
                    suppress.append((row.workspace, message.to, held, row.delivery_id))
                outcomes.append(Result(row.delivery_id, "failed", result.provider, reason, held=held))
                notices.append((job, reason, False))
            elif row.attempt >= s.notifier_max_attempts:
                outcomes.append(Result(row.delivery_id, "abandoned", result.provider,
                                       f"gave up after {row.attempt} attempts: {reason}"))
                notices.append((job, reason, True))
            else:
                delay = backoff(row.attempt, s.notifier_retry_base_seconds, s.notifier_retry_max_seconds)
                outcomes.append(Result(row.delivery_id, "retrying", result.provider, reason, retry_in=delay))
        notices = [n for n in notices if n[0].message.audience == "client"]  # a team notice failing tells no one
        async with self.pool.acquire() as conn:
            if not suppress and not notices:
                return await ledger.record(conn, outcomes, owner=self.owner)
            async with conn.transaction():
                recorded = await ledger.record(conn, outcomes, owner=self.owner)
                await suppression.suppress(conn, suppress)
                await self._queue_notices(conn, notices)
                return recorded

    async def _queue_notices(self, conn: asyncpg.Connection, notices: list[tuple[_Job, str | None, bool]]) -> None:
        """Team notices for failed deliveries, queued as due deliveries the retry loop sends."""
        if not notices:
            return
        known = await team.addresses(conn, {j.row.workspace for j, _, _ in notices if not j.team_address})
        planned = []
        for job, reason, abandoned in notices:
            address = job.team_address or known.get(job.row.workspace)
            if not address:
                log.info("delivery %s failed; workspace %s has no team address to tell", job.row.delivery_id,
                         job.row.workspace)
                continue
            sender = getattr(getattr(job.event, "data", None), "sender", None) if job.event else None
            notice = {
                "team_notify_email": address, "reason": reason, "abandoned": abandoned, "attempts": job.row.attempt,
                "message": job.message.message, "channel": job.message.channel, "recipient": job.message.to,
                "slot": job.message.slot, "workspace": job.row.workspace,
                "sender": sender.model_dump(mode="json") if sender is not None else None,
                "name": getattr(getattr(job.event, "data", None), "name", None) if job.event else None,
            }
            slot = f"team:failed:{job.message.slot}"
            planned.append(Planned(
                delivery_id=ledger.delivery_id_for(job.row.event_id, slot), event_id=job.row.event_id,
                account_id=job.row.account_id, workspace=job.row.workspace, channel="email", slot=slot,
                provider=self.email.name, recipient=address, envelope=json.dumps({TEAM_NOTICE: notice}),
                status="retrying",
            ))
        if planned:
            # Inserted as due now with no attempt yet; the retry loop claims and sends them.
            await conn.execute(
                """
                INSERT INTO notifier_deliveries (delivery_id, event_id, account_id, workspace, channel, slot, provider,
                                                 recipient, envelope, status, attempt, next_attempt_at, published)
                SELECT *, 'retrying', 0, now(), true
                  FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::text[], $9::jsonb[])
                ON CONFLICT DO NOTHING
                """,
                [p.delivery_id for p in planned], [p.event_id for p in planned], [p.account_id for p in planned],
                [p.workspace for p in planned], [p.channel for p in planned], [p.slot for p in planned],
                [p.provider for p in planned], [p.recipient for p in planned], [p.envelope for p in planned],
            )

    # Retry loop work (retries.py calls these).

    async def retry_due(self, limit: int | None = None) -> int:
        """Send what is due again (transient failures, expired leases, queued team notices), a
        few rounds of sends at a time, so their lease stays short."""
        limit = limit or self.settings.notifier_send_concurrency * 4
        async with self.pool.acquire() as conn:
            due = await ledger.claim_due(conn, owner=self.owner, lease_seconds=self.lease_for(limit), limit=limit)
        if not due:
            return 0
        jobs, undeliverable = [], []
        for row, envelope in due:
            try:
                job = await self._job_again(row, envelope)
            except Exception as exc:  # noqa: BLE001 - it rendered once; if it no longer does, say why
                undeliverable.append(Result(row.delivery_id, "failed", row.provider,
                                            f"cannot render it again: {type(exc).__name__}: {exc}"[:500]))
                continue
            if job is None:
                undeliverable.append(Result(row.delivery_id, "suppressed", row.provider,
                                            "the link or code expired before it could be sent"))
            else:
                jobs.append(job)
        recorded = await self.send_and_record(jobs)
        if undeliverable:
            async with self.pool.acquire() as conn:
                recorded += await ledger.record(conn, undeliverable, owner=self.owner)
        await self.publish(recorded, [])
        self._log(recorded, [])
        return len(due)

    async def _job_again(self, row: Row, envelope: str) -> _Job | None:
        data = json.loads(envelope)
        if TEAM_NOTICE in data:
            notice = dict(data[TEAM_NOTICE])
            sender = notice.pop("sender", None)
            if sender is not None:
                from contracts.access import Sender

                notice["sender"] = Sender.model_validate(sender)
            return _Job(row, seams.team_delivery_failed(**notice), None, None)
        event = parse_access_event(data)
        known = await self.team_addresses([event])
        message = next((m for m in self.render(event, known.get(event.workspace)) if m.slot == row.slot), None)
        if message is None:
            raise LookupError(f"the event no longer sends a {row.slot!r} message")
        if message.expires_at is not None and message.expires_at <= datetime.now(timezone.utc):
            return None
        return _Job(row, message, team.event_team_address(event), event)

    async def publish_unpublished(self, limit: int = 500) -> int:
        """The outbox: outcomes recorded but not published (a crash in between; webhooks)."""
        await self.flush_marks()  # first: what is on the topic already is not published again
        async with self.pool.acquire() as conn:
            rows = await ledger.unpublished(conn, older_than=self.settings.notifier_outbox_grace_seconds, limit=limit)
        await self.publish(rows, [])
        return len(rows)

    # Publish.

    async def publish(self, rows: list[Row], repeats: list[Row], *, wait: bool = True) -> None:
        """Outcomes to the deliveries topic; once the broker has them all, the outbox marks them.
        Repeats (already published once) are published again: consumers dedupe on delivery_id,
        and a crash after recording and before publishing must not lose an outcome.

        With `wait=False` (a consumed batch) this returns once the outcomes are handed to the
        producer, and the broker's acknowledgement is awaited beside the next batch: the batch
        is acknowledged without it, and the outbox (publish_unpublished) publishes an outcome
        whose acknowledgement never came, since only acknowledged ones are marked."""
        everything = rows + repeats
        if not everything:
            return
        if self.producer is not None:
            topic, headers = self.settings.deliveries_topic, [("content-type", b"application/json")]
            futures = [
                await self.producer.send(
                    topic, row.outcome().model_dump_json().encode(), key=str(row.account_id).encode(), headers=headers
                )
                for row in everything
            ]
        else:
            futures = [
                await self.outcomes.publish(
                    row.outcome().model_dump_json().encode(), key=str(row.account_id).encode(),
                    headers={"content-type": "application/json"}, no_confirm=True,
                )
                for row in everything
            ]
        if wait:
            await asyncio.gather(*futures)
            self._to_mark.extend(rows)
            return
        task = asyncio.create_task(self._acknowledged(futures, rows))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _acknowledged(self, futures: list, rows: list[Row]) -> None:
        try:
            await asyncio.gather(*futures)
        except Exception as exc:  # noqa: BLE001 - unmarked, so the outbox publishes them again
            log.warning("%d outcomes were not acknowledged by the broker (%s: %s); the outbox will publish them",
                        len(rows), type(exc).__name__, exc)
            return
        self._to_mark.extend(rows)

    async def published(self) -> None:
        """Wait for the outcomes still waiting on the broker's acknowledgement (before a stop)."""
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)

    async def flush_marks(self) -> int:
        """Mark the outcomes published since the last call (the outbox's bookkeeping)."""
        rows, self._to_mark = self._to_mark, []
        try:
            await ledger.mark_published(self.pool, rows)
        except BaseException:
            self._to_mark[:0] = rows  # next time
            raise
        return len(rows)

    def _log(self, rows: list[Row], repeats: list[Row]) -> None:
        """A line per batch at INFO; a line per delivery at DEBUG, or WARNING when it failed.
        A repeat (redelivery, re-publish, a restart reading the topic again) sent nothing."""
        debug = log.isEnabledFor(logging.DEBUG)
        for row in rows:
            DELIVERIES.labels(row.channel, row.status).inc()
            if row.status in ("failed", "abandoned", "retrying"):
                log.warning("delivery event_id=%s delivery_id=%s account_id=%s channel=%s status=%s attempt=%d "
                            "repeat=False error=%r", row.event_id, row.delivery_id, row.account_id, row.channel,
                            row.status, row.attempt, row.error)
            elif debug:
                log.debug("delivery event_id=%s delivery_id=%s account_id=%s channel=%s status=%s attempt=%d "
                          "repeat=False", row.event_id, row.delivery_id, row.account_id, row.channel, row.status,
                          row.attempt)
        for row in repeats:
            DELIVERY_REPEATS.labels(row.channel).inc()
            if debug:
                log.debug("delivery event_id=%s delivery_id=%s account_id=%s channel=%s status=%s attempt=%d "
                          "repeat=True", row.event_id, row.delivery_id, row.account_id, row.channel, row.status,
                          row.attempt)
        if rows or repeats:
            counts = Counter(r.status for r in rows)
            log.info("deliveries: %s; repeats (nothing sent): %d",
                     ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none", len(repeats))
