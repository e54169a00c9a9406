"""The staff status list (`account_status`): one row per portal account, from access events.

One typed handler per event type it shows, each taking that type's envelope; consumer.py
registers them on the access topic's subscriber (routed by the `type` header). Every other
type (workspace events, TokenClaimed, anything added later) is only recorded as applied.
Each handler's update and the applied-record commit in one transaction (projector.py).
Timestamps come from the events, so a replay rebuilds identical rows.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import asyncpg

from contracts.access import (
    ACCOUNT_CREATED,
    INVITE_SENT,
    AccessDisabledV1,
    AccessEventV1,
    AccessReenabledV1,
    AccountActivatedV1,
    AccountCreatedV1,
    InviteResentV1,
    InviteRevokedV1,
    InviteSentV1,
    SignedInV1,
    VerificationFailedV1,
    TripFirstSharedV1,
    TripSharedV1,
)
from projections import status_rows
from projections.applied import applied_versions
from projections.projector import Projector, ProjectorContext
from services.common.event_routing import route

log = logging.getLogger(__name__)

PROJECTION = "status_list"


def _applying(projector: Projector, msg: AccessEventV1):
    # Every handler claims its event through here: with the event's log position (for
    # read-your-writes and the lag) and, when the projector can read the event store, a
    # repair of any versions of the aggregate that never arrived (a lost message).
    fill_gap = (lambda: _fill_gap(projector, msg)) if projector.event_source is not None else None
    return projector.applying(
        PROJECTION, msg.aggregate_id, msg.aggregate_version, msg.event_id, position=msg.position, fill_gap=fill_gap
    )


class GapNotRepaired(RuntimeError):
    """The event store does not have the versions a gap needs: never skip them silently."""


async def _fill_gap(projector: Projector, msg: AccessEventV1) -> None:
    """Apply, oldest first, the versions of `msg`'s aggregate before it that were never applied."""
    assert projector.event_source is not None and projector.pool is not None
    have = await applied_versions(projector.pool, PROJECTION, msg.aggregate_id, below=msg.aggregate_version)
    missing = [v for v in range(1, msg.aggregate_version) if v not in have]
    events = await projector.event_source(msg, missing)
    lacking = set(missing) - {e.aggregate_version for e in events}
    if lacking:
        raise GapNotRepaired(f"{msg.aggregate_id}: versions {sorted(lacking)} are not in the event store")
    handler_for = route(HANDLERS, otherwise=on_other_event)
    for event in sorted(events, key=lambda e: e.aggregate_version):
        await handler_for(event.type)(event, projector)


def _actor_name(event: AccessEventV1) -> str:
    return event.actor.id or event.actor.kind


def fact_of(msg: AccessEventV1) -> status_rows.Fact:
    """The event's facts as status_rows takes them (replay builds the same from the stored event)."""
    data = msg.data if isinstance(msg.data, dict) else vars(msg.data)
    return status_rows.Fact(msg.type, msg.aggregate_id, msg.account_id, msg.workspace, msg.occurred_at,
                            _actor_name(msg), data)


async def _apply(projector: ProjectorContext, msg: AccessEventV1) -> bool:
    """Claim the event, then fold it into each row it touches (status_rows: the one definition of
    what an event does, which replay applies too), in the claim's transaction.

    Inside a fetched batch (Projector.batch) the rows are read, folded and written once for the
    whole batch, when it ends (`_BatchRows`)."""
    async with _applying(projector, msg) as conn:
        if conn is None:
            return False  # applied before: change nothing
        batch = projector.current_batch() if isinstance(projector, Projector) else None
        rows = _BatchRows.of(batch) if batch is not None else None
        account = msg.account_id or msg.aggregate_id
        for table, key, fold in status_rows.effects(fact_of(msg)):
            if rows is not None:
                rows.note(table, key, fold, msg)
            elif await write_folded(conn, table, key, fold) is None:
                _unknown(table, key, msg)
        if msg.type in (ACCOUNT_CREATED, INVITE_SENT):
            if rows is not None:
                rows.catch_up.append(account)
            else:
                await _catch_up_deliveries(conn, account)
    return True


class _BatchRows:
    """The rows a batch's events touch, folded together: each event's folds are only noted; before
    the batch commits the touched rows are read (locked) in one statement per table, folded in
    the events' order, and written with one statement per kind; then the new accounts'
    deliveries are caught up. A handful of round trips per batch, as for other batched writes."""

    def __init__(self, queue: Any, conn: asyncpg.Connection) -> None:
        self._queue = queue  # the batch's statement queue, sent before this runs
        self._conn = conn
        self._folds: dict[str, dict[tuple, list[tuple[status_rows.Fold, AccessEventV1]]]] = {}
        self.catch_up: list = []

    @classmethod
    def of(cls, batch: Any) -> _BatchRows:
        rows = batch.state.get(PROJECTION)
        if rows is None:
            rows = batch.state[PROJECTION] = cls(batch.queue, batch.conn)
            batch.before_commit.append(rows.flush)
        return rows

    def note(self, table: str, key: tuple, fold: status_rows.Fold, msg: AccessEventV1) -> None:
        self._folds.setdefault(table, {}).setdefault(key, []).append((fold, msg))

    async def flush(self) -> None:
        for table, folds in self._folds.items():
            await self._flush_table(table, folds)
        for account in dict.fromkeys(self.catch_up):
            await _catch_up_deliveries(self._queue, account)
        await self._queue.flush()

    async def _flush_table(self, table: str, folds: dict[tuple, list]) -> None:
        before = await _read_all_locked(self._conn, table, list(folds))
        inserts, updates = {}, {}
        for key, steps in folds.items():
            row = old = before.get(key)
            for fold, msg in steps:
                after = fold(row)
                if after is None:
                    _unknown(table, key, msg)
                else:
                    row = after
            if row is None or row == old:
                continue
            (inserts if old is None else updates)[key] = row
        columns = _COLUMNS[table]
        if inserts:
            names = status_rows.KEYS[table]
            inserted = await self._conn.fetch(
                _insert_all_sql(table), *([_to_db(c, row.get(c)) for row in inserts.values()] for c in columns)
            )
            done = {tuple(r[n] for n in names) for r in inserted}
            lost = [key for key in inserts if key not in done]
            if lost:
                # Rows another consumer inserted first (a trip's contact, shared on another
                # partition) kept their values: fold this batch's events again over them.
                now = await _read_all_locked(self._conn, table, lost)
                for key in lost:
                    refolded = theirs = now[key]
                    for fold, _ in folds[key]:
                        refolded = fold(refolded) or refolded
                    if refolded != theirs:
                        updates[key] = refolded
        if updates:
            await self._conn.executemany(_update_sql(table), [_values(row, columns) for row in updates.values()])


def _unknown(table: str, key: tuple, msg: AccessEventV1) -> None:
    if table == status_rows.ACCOUNTS:
        # Cannot happen in partition order (AccountCreated comes first); say so, but do not
        # block the partition retrying an event that can never apply.
        log.warning("%s for unknown account %s (event %s)", msg.type, key[0], msg.event_id)


_COLUMNS = {status_rows.ACCOUNTS: status_rows.ACCOUNT_COLUMNS, status_rows.TRAVELERS: status_rows.TRAVELER_COLUMNS}


_TYPES = {
    status_rows.ACCOUNTS: dict.fromkeys(status_rows.ACCOUNT_COLUMNS, "text") | {
        "account_id": "uuid", "invitation_id": "uuid", "resources": "jsonb", "recent_sign_ins": "jsonb", "sign_ins": "int",
        **dict.fromkeys(("invited_at", "last_invite_sent_at", "expires_at", "activated_at", "disabled_at",
                         "last_sign_in_at", "last_delivery_at", "updated_at"), "timestamptz"),
    },
    status_rows.TRAVELERS: dict.fromkeys(status_rows.TRAVELER_COLUMNS, "text") | {
        "first_seen_at": "timestamptz", "updated_at": "timestamptz", "ord": "int", "is_primary": "boolean",
        "account_id": "uuid",
    },
}


def _insert_all_sql(table: str) -> str:
    """Every new row in one statement (a column's values as one array each), answering the keys it inserted."""
    columns, types = _COLUMNS[table], _TYPES[table]
    arrays = ", ".join(f"${i}::{types[c]}[]" for i, c in enumerate(columns, 1))
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT DO NOTHING RETURNING {', '.join(status_rows.KEYS[table])}")


def _update_sql(table: str) -> str:
    """Every column the rules own, set to the folded row (read under the row's lock, so nothing else changed)."""
    columns, keys = _COLUMNS[table], status_rows.KEYS[table]
    where = " AND ".join(f"{k} = ${columns.index(k) + 1}" for k in keys)
    sets = ", ".join(f"{c} = {_placeholder(c, i)}" for i, c in enumerate(columns, 1) if c not in keys)
    return f"UPDATE {table} SET {sets} WHERE {where}"


def _values(row: dict, columns: tuple[str, ...]) -> tuple:
    return tuple(_to_db(c, row.get(c)) for c in columns)


async def _read_all_locked(conn: asyncpg.Connection, table: str, keys: list[tuple]) -> dict[tuple, dict]:
    names = status_rows.KEYS[table]
    if len(names) == 1:
        records = await conn.fetch(f"SELECT * FROM {table} WHERE {names[0]} = ANY($1::uuid[]) FOR UPDATE",
                                   [k[0] for k in keys])
    else:
        records = await conn.fetch(
            f"SELECT * FROM {table} WHERE ({', '.join(names)}) IN "
            f"(SELECT * FROM unnest({', '.join(f'${i}::text[]' for i in range(1, len(names) + 1))})) FOR UPDATE",
            *([k[i] for k in keys] for i in range(len(names))),
        )
    return {tuple(r[n] for n in names): row for r in records if (row := _from_db(r)) is not None}


async def write_folded(conn: asyncpg.Connection, table: str, key: tuple, fold: status_rows.Fold) -> dict | None:
    """Read the row (locked), fold the event into it, write back what changed; the row after, or None.

    A row another transaction inserts between our read and our insert (a trip's contact, shared on
    another partition) makes the insert do nothing: then read it and fold again."""
    for _ in range(3):
        before = await _read_locked(conn, table, key)
        after = fold(before)
        if after is None or after == before:
            return after
        if await _write(conn, table, key, before, after):
            return after
    raise RuntimeError(f"{table} {key}: inserted concurrently, again and again")


def _where(table: str) -> str:
    return " AND ".join(f"{column} = ${i}" for i, column in enumerate(status_rows.KEYS[table], 1))


async def _read_locked(conn: asyncpg.Connection, table: str, key: tuple) -> dict | None:
    return _from_db(await conn.fetchrow(f"SELECT * FROM {table} WHERE {_where(table)} FOR UPDATE", *key))


async def _write(conn: asyncpg.Connection, table: str, key: tuple, before: dict | None, after: dict) -> bool:
    """Insert the row, or update the columns that changed; False if the insert found the row there."""
    if before is None:
        columns = list(after)
        inserted = await conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join(_placeholder(c, i) for i, c in enumerate(columns, 1))}) ON CONFLICT DO NOTHING",
            *(_to_db(c, after[c]) for c in columns),
        )
        return inserted != "INSERT 0 0"
    changed = [c for c in after if after[c] != before.get(c)]
    if changed:
        offset = len(key)
        await conn.execute(
            f"UPDATE {table} SET {', '.join(f'{c} = {_placeholder(c, offset + i)}' for i, c in enumerate(changed, 1))}"
            f" WHERE {_where(table)}",
            *key, *(_to_db(c, after[c]) for c in changed),
        )
    return True


def _from_db(record: asyncpg.Record | None) -> dict | None:
    if record is None:
        return None
    row = dict(record)
    if "updated_at" in row:  # the one column that may hold -infinity (status_rows.NEVER)
        row["updated_at"] = status_rows.from_db(row["updated_at"])
    for column in status_rows.JSON_COLUMNS:
        if isinstance(row.get(column), str):  # jsonb arrives as text
            row[column] = json.loads(row[column])
    return row


def _placeholder(column: str, index: int) -> str:
    return f"${index}::jsonb" if column in status_rows.JSON_COLUMNS else f"${index}"


def _to_db(column: str, value: object) -> object:
    return json.dumps(value) if column in status_rows.JSON_COLUMNS else status_rows.to_db(value)


async def on_account_created(msg: AccountCreatedV1, projector: ProjectorContext) -> bool:
    """AccountCreated: the row, pending, with what staff filter and sort on."""
    return await _apply(projector, msg)


async def on_invite_sent(msg: InviteSentV1, projector: ProjectorContext) -> bool:
    """InviteSent: who invited and when, and the newest invite's expiry."""
    return await _apply(projector, msg)


async def on_account_activated(msg: AccountActivatedV1, projector: ProjectorContext) -> bool:
    """AccountActivated: the account is active from the claim on."""
    return await _apply(projector, msg)


async def on_other_event(msg: AccessEventV1, projector: ProjectorContext) -> bool:
    """Every other event type: nothing to show, only recorded as applied."""
    async with _applying(projector, msg) as conn:
        return conn is not None


# Staff actions. Each is an event of the account aggregate, so they arrive in the order they
# happened (one partition per account). A resend's or reactivate's new link, expiry and
# send time come with its own InviteSent; InvitationVoided and PasswordResetRequested change
# nothing the list shows. What each one sets: status_rows.EFFECTS.


async def on_invite_revoked(msg: InviteRevokedV1, projector: ProjectorContext) -> bool:
    """InviteRevoked: the pending invite was cancelled and the account disabled."""
    return await _apply(projector, msg)


async def on_access_disabled(msg: AccessDisabledV1, projector: ProjectorContext) -> bool:
    """AccessDisabled: who disabled the account, when, and why (the reason staff typed, if any)."""
    return await _apply(projector, msg)


async def on_access_reenabled(msg: AccessReenabledV1, projector: ProjectorContext) -> bool:
    """AccessReenabled: back to pending or active; no longer disabled by anyone."""
    return await _apply(projector, msg)


async def on_invite_resent(msg: InviteResentV1, projector: ProjectorContext) -> bool:
    """InviteResent: the account is pending on a fresh invitation (its InviteSent fills in the rest)."""
    return await _apply(projector, msg)


async def on_signed_in(msg: SignedInV1, projector: ProjectorContext) -> bool:
    """SignedIn (a claim counts as the first): when the client last signed in, and how often."""
    return await _apply(projector, msg)


async def on_verification_failed(msg: VerificationFailedV1, projector: ProjectorContext) -> bool:
    """VerificationFailed: a wrong code or password, shown in the recent login activity."""
    return await _apply(projector, msg)


async def on_trip_first_shared(msg: TripFirstSharedV1, projector: ProjectorContext) -> bool:
    """TripFirstShared: the trip's travelers, and a not_invited row for each contact without an account."""
    return await _apply(projector, msg)


async def on_trip_shared(msg: TripSharedV1, projector: ProjectorContext) -> bool:
    """TripShared: a later share's travelers, likewise."""
    return await _apply(projector, msg)


HANDLERS = (
    on_account_created,
    on_invite_sent,
    on_account_activated,
    on_invite_revoked,
    on_access_disabled,
    on_access_reenabled,
    on_invite_resent,
    on_signed_in,
    on_verification_failed,
    on_trip_first_shared,
    on_trip_shared,
)


async def lock_account(conn: asyncpg.Connection, account_id: uuid.UUID) -> None:
    """Until the transaction ends: orders a delivery's update against the catch-up of a row being
    created, which run in different consumers' transactions (see _catch_up_deliveries)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 17))", str(account_id))


async def _catch_up_deliveries(conn: asyncpg.Connection, account_id: uuid.UUID) -> None:
    """Deliveries come on another topic and may be projected before the account row exists.
    Whichever of the two transactions takes the account's lock second sees the other's
    committed write: the delivery's update finds the row, or this catch-up finds the delivery."""
    await lock_account(conn, account_id)
    await conn.execute(
        """
        UPDATE account_status s SET last_delivery_status = d.status, last_delivery_at = d.at
        FROM (SELECT status, at FROM account_deliveries WHERE account_id = $1 AND audience = 'client'
              ORDER BY at DESC, attempt DESC LIMIT 1) d
        WHERE s.account_id = $1 AND s.last_delivery_at IS DISTINCT FROM d.at
        """,
        account_id,
    )
