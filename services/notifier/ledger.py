"""The delivery ledger (`notifier_deliveries`): what was sent, or is being sent, for which message.

No transaction or row lock is held across a provider call. A delivery is

1. claimed: inserted as 'sending' with a lease (lease_until, lease_owner) and committed. The
   insert of a delivery id that exists already does nothing, so a redelivered or re-published
   event claims nothing and sends nothing twice; its recorded outcome is published again;
2. sent, outside any transaction;
3. recorded: the outcome in a new short transaction, only by the lease's owner.

A notifier that dies between 1 and 3 leaves a 'sending' row whose lease runs out; the retry
loop (retries.py) claims it again and sends it. Every step takes one round trip for a whole
fetched batch of messages, not one per message.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
import asyncpg

from contracts import DeliveryOutcomeV1

DELIVERY_NAMESPACE = uuid.UUID("0b7e6a52-58f4-4c1f-9f0b-3c7d2b1e9a44")
OUTCOMES = frozenset({"sent", "failed", "suppressed", "retrying", "abandoned", "delivered", "bounced"})

_COLUMNS = "delivery_id, event_id, account_id, workspace, channel, slot, provider, status, attempt, error, held, updated_at"


def ledger_key(slot: str) -> str:
    """The part of the delivery id that names the message within its event. A client's email
    and SMS keep the keys older versions used ('email', 'sms'), so an invite recorded by them
    is recognised when the relay publishes the log again, and not sent a second time."""
    return slot.removeprefix("client:")


def delivery_id_for(event_id: uuid.UUID, slot: str) -> uuid.UUID:
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}/{ledger_key(slot)}")


@dataclass
class Planned:
    """A message to claim: `status` 'sending', or 'suppressed' with `error` (expired, no provider)."""

    delivery_id: uuid.UUID
    event_id: uuid.UUID
    account_id: uuid.UUID
    workspace: str
    channel: str
    slot: str
    provider: str
    recipient: str
    envelope: str  # JSON: what the retry loop re-renders from (never a link or a code)
    status: str = "sending"
    error: str | None = None


@dataclass
class Row:
    """A ledger row as claimed or recorded."""

    delivery_id: uuid.UUID
    event_id: uuid.UUID
    account_id: uuid.UUID
    workspace: str
    channel: str
    slot: str
    provider: str
    status: str
    attempt: int
    error: str | None
    held: str | None
    updated_at: datetime

    def outcome(self) -> DeliveryOutcomeV1:
        return DeliveryOutcomeV1(
            delivery_id=self.delivery_id, event_id=self.event_id, account_id=self.account_id,
            workspace=self.workspace, channel=self.channel, provider=self.provider, status=self.status,
            attempt=max(self.attempt, 1), error=self.error, at=self.updated_at, held=self.held,
            audience="team" if self.slot.startswith("team:") else "client",
        )


def _rows(records) -> list[Row]:
    return [Row(**dict(r)) for r in records]


async def claim(
    conn: asyncpg.Connection, planned: list[Planned], *, owner: str, lease_seconds: float
) -> tuple[list[Row], list[Row]]:
    """Claim `planned` in one statement: (rows claimed now, to send or with an outcome already
    decided, like a suppressed address), (rows that existed: their recorded state)."""
    if not planned:
        return [], []
    p = planned
    claimed = _rows(await conn.fetch(
        f"""
        INSERT INTO notifier_deliveries (delivery_id, event_id, account_id, workspace, channel, slot, provider,
                                         recipient, envelope, status, error, held, attempt, lease_until,
                                         lease_owner, published, updated_at)
        SELECT d.delivery_id, d.event_id, d.account_id, d.workspace, d.channel, d.slot, d.provider, d.recipient,
               d.envelope,
               CASE WHEN d.status = 'sending' AND s.address IS NOT NULL THEN 'suppressed' ELSE d.status END,
               CASE WHEN d.status = 'sending' AND s.address IS NOT NULL
                    THEN 'the address is held: ' || s.reason || ' (a staff resend clears it)' ELSE d.error END,
               CASE WHEN d.status = 'sending' AND s.address IS NOT NULL THEN s.reason END,
               1, now() + make_interval(secs => $12), $13, false, now()
          FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                      $8::text[], $9::jsonb[], $10::text[], $11::text[])
               AS d(delivery_id, event_id, account_id, workspace, channel, slot, provider, recipient, envelope,
                    status, error)
          LEFT JOIN notifier_suppressions s
                 ON d.channel = 'email' AND s.workspace = d.workspace AND s.address = lower(d.recipient)
        ON CONFLICT DO NOTHING
        RETURNING {_COLUMNS}
        """,
        [x.delivery_id for x in p], [x.event_id for x in p], [x.account_id for x in p], [x.workspace for x in p],
        [x.channel for x in p], [x.slot for x in p], [x.provider for x in p], [x.recipient for x in p],
        [x.envelope for x in p], [x.status for x in p], [x.error for x in p], float(lease_seconds), owner,
    ))
    if len(claimed) == len(planned):
        return claimed, []
    mine = {r.delivery_id for r in claimed}
    others = [x.delivery_id for x in planned if x.delivery_id not in mine]
    existing = _rows(await conn.fetch(
        f"SELECT {_COLUMNS} FROM notifier_deliveries WHERE delivery_id = ANY($1::uuid[])", others
    ))
    return claimed, existing


@dataclass
class Result:
    """What to record for one claimed delivery."""

    delivery_id: uuid.UUID
    status: str  # sent, failed, retrying, abandoned, suppressed
    provider: str
    error: str | None = None
    message_id: str | None = None
    retry_in: float | None = None  # seconds, for 'retrying'
    held: str | None = None  # the address is now suppressed, and why


async def record(conn: asyncpg.Connection, results: list[Result], *, owner: str) -> list[Row]:
    """Record outcomes of deliveries this owner claimed, in one statement. A row whose lease
    another notifier has taken over meanwhile is left alone (that one records it)."""
    if not results:
        return []
    r = results
    return _rows(await conn.fetch(
        f"""
        UPDATE notifier_deliveries n
           SET status = u.status, error = u.error, provider = u.provider, held = u.held,
               message_id = COALESCE(u.message_id, n.message_id),
               next_attempt_at = CASE WHEN u.status = 'retrying' THEN now() + make_interval(secs => u.retry_in) END,
               sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE n.sent_at END,
               lease_until = NULL, published = false, updated_at = now()
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $8::text[])
               AS u(delivery_id, status, error, provider, message_id, retry_in, held)
         WHERE n.delivery_id = u.delivery_id AND n.status = 'sending' AND n.lease_owner = $7
     RETURNING {", ".join("n." + c.strip() for c in _COLUMNS.split(","))}
        """,
        [x.delivery_id for x in r], [x.status for x in r], [x.error for x in r], [x.provider for x in r],
        [x.message_id for x in r], [x.retry_in for x in r], owner, [x.held for x in r],
    ))


async def mark_published(pool: asyncpg.Pool, rows: list[Row]) -> None:
    """The outbox's bookkeeping: these outcomes are on the topic (as of their update time)."""
    if rows:
        await pool.execute(
            """
            UPDATE notifier_deliveries n SET published = true
              FROM unnest($1::uuid[], $2::timestamptz[]) AS p(delivery_id, updated_at)
             WHERE n.delivery_id = p.delivery_id AND n.updated_at = p.updated_at AND NOT n.published
            """,
            [x.delivery_id for x in rows], [x.updated_at for x in rows],
        )


async def claim_due(conn: asyncpg.Connection, *, owner: str, lease_seconds: float, limit: int) -> list[tuple[Row, str]]:
    """Claim deliveries whose retry is due, or whose lease ran out (a notifier died sending
    them): (row, envelope). SKIP LOCKED: two notifiers polling at once take different rows."""
    records = await conn.fetch(
        f"""
        UPDATE notifier_deliveries n
           SET status = 'sending', attempt = n.attempt + 1, lease_until = now() + make_interval(secs => $1),
               lease_owner = $2, next_attempt_at = NULL, updated_at = now()
          FROM (SELECT delivery_id FROM notifier_deliveries
                 WHERE (status = 'retrying' AND next_attempt_at <= now())
                    OR (status = 'sending' AND lease_until < now())
                 ORDER BY next_attempt_at NULLS FIRST
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED) due
         WHERE n.delivery_id = due.delivery_id
     RETURNING {", ".join("n." + c.strip() for c in _COLUMNS.split(","))}, n.envelope::text AS envelope
        """,
        float(lease_seconds), owner, limit,
    )
    out = []
    for rec in records:
        values = dict(rec)
        envelope = values.pop("envelope")
        out.append((Row(**values), envelope))
    return out


async def unpublished(conn: asyncpg.Connection, *, older_than: float, limit: int) -> list[Row]:
    """Outcomes recorded but not on the topic yet: a crash between record and publish, or a
    webhook the API recorded."""
    return _rows(await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM notifier_deliveries
         WHERE NOT published AND status <> 'sending' AND updated_at < now() - make_interval(secs => $1)
         ORDER BY updated_at LIMIT $2
        """,
        float(older_than), limit,
    ))
