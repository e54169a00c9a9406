"""Status-list rows written straight into `account_status`: thousands of accounts in a
moment, for tests of the list's filters, sorts and pages (the projector's own tests build
rows from events)."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

COLUMNS = (
    "account_id", "workspace", "email", "name", "role", "company", "resources", "status", "invited_at",
    "invited_by", "last_invite_sent_at", "expires_at", "activated_at", "last_sign_in_at", "sign_ins", "updated_at",
)

FIRST = ["Ann", "Bob", "cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ida", "Jo"]
COMPANIES = ["Acme Charters", "Blue Jets", None, "acme freight", "Solo"]
STATUSES = ["pending", "active", "disabled", "not_invited"]


@dataclass
class Seeded:
    rows: list[dict]
    now: datetime

    def by_id(self) -> dict[uuid.UUID, dict]:
        return {r["account_id"]: r for r in self.rows}


def make_rows(workspace: str, count: int, *, seed: int = 7, now: datetime | None = None) -> Seeded:
    """`count` accounts: every state, some nameless, ties on invited_at (three per minute, so the
    keyset's tie-breaker matters), a third of the pending ones with a lapsed link, trips T-0..T-49."""
    rnd = random.Random(f"{workspace}:{seed}")  # ids unique per workspace, names repeatable
    now = now or datetime.now(UTC).replace(microsecond=0)
    rows = []
    for i in range(count):
        status = STATUSES[i % 4]
        invited_at = now - timedelta(minutes=i // 3)
        lapsed = status == "pending" and i % 3 == 0
        expires_at = (now - timedelta(hours=1 + i % 5)) if lapsed else invited_at + timedelta(days=7)
        signed_in = status in ("active", "disabled") and i % 5 != 0
        rows.append({
            "account_id": uuid.UUID(int=rnd.getrandbits(128)),
            "workspace": workspace,
            "email": f"user{i:05d}@example.com",
            "name": None if i % 11 == 0 else f"{rnd.choice(FIRST)} Person{i:05d}",
            "role": "customer",
            "company": COMPANIES[i % len(COMPANIES)],
            "resources": json.dumps([{"type": "trip", "id": f"T-{i % 50}"}]),
            "status": status,
            "invited_at": invited_at,
            "invited_by": "staff-1",
            "last_invite_sent_at": invited_at,
            "expires_at": None if status == "not_invited" else expires_at,
            "activated_at": invited_at + timedelta(hours=1) if status in ("active", "disabled") else None,
            "last_sign_in_at": now - timedelta(seconds=rnd.randrange(10**6)) if signed_in else None,
            "sign_ins": 1 if signed_in else 0,
            "updated_at": invited_at,
        })
    return Seeded(rows, now)


async def insert_rows(pool, rows: list[dict]) -> None:
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "account_status", columns=COLUMNS, records=[tuple(r[c] for c in COLUMNS) for r in rows]
        )
