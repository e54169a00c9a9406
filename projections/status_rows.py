"""What each access event does to the read models' rows: the one definition of it.

Pure functions over plain row dicts (column -> value), no database: given an event's facts
and the row as it stands (or None), the row as it must be after the event. Both writers of
the read models apply these and nothing else:

- the live projector (status_list.py, travelers.py): reads the row the event touches
  (locked), folds the event into it, writes back the columns that changed;
- replay (deploy/replay.py): folds the whole log into rows in memory, then copies them
  into the fresh tables at once.

So the two cannot drift apart; tests/integration/test_replay.py checks that their rows are
equal. Every rule is written for Kafka's order: one account's (one aggregate's) events
arrive in order, different accounts' events interleave arbitrarily, and AccountCreated
and InviteSent (one save, two aggregates) in either order. Whatever that interleaving, the
rows end the same, which is what lets replay apply the log in its own order.

Timestamps come from the events, never the clock, so a rebuild gives identical rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

Row = dict[str, Any]
# The row before (None: none yet) -> after (None: leave none). `owned`: the caller hands over a row
# nobody else holds (replay's rows in memory), so the rule may change it in place instead of
# copying it (the live projector keeps the row it read, to write back only what changed).
Fold = Callable[..., Row | None]

# A contact row made from a trip share has had no account event yet: its updated_at sorts
# before any, so the first account event sets it as on a fresh row. In PostgreSQL that is
# -infinity, which asyncpg reads and writes as a naive datetime.min (not comparable with the
# events' times): `from_db` and `to_db` translate.
NEVER = datetime(1, 1, 1, tzinfo=timezone.utc)
_PG_NEVER = datetime.min


def from_db(value: Any) -> Any:
    return NEVER if value == _PG_NEVER and type(value) is datetime and value.tzinfo is None else value


def to_db(value: Any) -> Any:
    return _PG_NEVER if value is NEVER or (type(value) is datetime and value == NEVER) else value

ACCOUNT_COLUMNS = (
    "account_id", "workspace", "email", "name", "role", "company", "phone", "contact_id", "resources", "status",
    "invitation_id", "invited_at", "invited_by", "last_invite_sent_at", "expires_at", "activated_at",
    "disabled_at", "disabled_by", "last_sign_in_at", "sign_ins", "last_delivery_status", "last_delivery_at",
    "updated_at", "disabled_reason", "recent_sign_ins",
)
JSON_COLUMNS = frozenset({"resources", "recent_sign_ins"})  # jsonb: written as JSON text, read back as lists
RECENT_SIGN_INS = 10  # sign-in attempts the access tab shows, newest first
TRAVELER_COLUMNS = (
    "workspace", "trip_id", "traveler_key", "first_seen_at", "ord", "contact_id", "name", "email", "phone",
    "is_primary", "account_id", "updated_at",
)


def new_account(account_id: Any, workspace: str, invited_at: datetime, updated_at: datetime) -> Row:
    """A row with the table's defaults (projections/schema.sql)."""
    row = dict.fromkeys(ACCOUNT_COLUMNS)
    row.update(account_id=account_id, workspace=workspace, resources=[], status="pending", invited_at=invited_at,
               sign_ins=0, updated_at=updated_at, recent_sign_ins=[])
    return row


def _least(a: Any, b: Any) -> Any:  # SQL's LEAST / GREATEST: a NULL is ignored
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def _first_invite(row: Row, at: datetime) -> None:
    """A contact known from shares (not_invited) becomes pending, invited when the invite was."""
    if row["status"] == "not_invited":
        row["status"] = "pending"
        row["invited_at"] = at
    else:
        row["invited_at"] = _least(row["invited_at"], at)


# AccountCreated and InviteSent are written by one save, so they arrive in either order:
# each creates the row or fills in its own columns, keeps what the other already wrote, and
# takes the earliest invite time.
def account_created(
    account_id: Any, workspace: str, at: datetime, by: str, *, email: str, name: str | None, role: str,
    company: str | None, phone: str | None, contact_id: str | None, resources: list[dict[str, Any]],
    invitation_id: Any,
) -> Fold:
    def fold(row: Row | None, owned: bool = False) -> Row:
        if row is None:
            row = new_account(account_id, workspace, at, at)
            row.update(invitation_id=invitation_id, invited_by=by)
        else:
            row = row if owned else dict(row)
            _first_invite(row, at)
            row["invitation_id"] = row["invitation_id"] if row["invitation_id"] is not None else invitation_id
            row["invited_by"] = row["invited_by"] if row["invited_by"] is not None else by
            row["updated_at"] = _greatest(row["updated_at"], at)
        row.update(email=email, name=name, role=role, company=company, phone=phone, contact_id=contact_id,
                   resources=resources)
        return row
    return fold


def invite_sent(
    account_id: Any, workspace: str, at: datetime, by: str, *, email: str, name: str | None, invitation_id: Any,
    expires_at: datetime,
) -> Fold:
    """Who invited and when, and the newest invite's link and expiry (an older invite applied late changes neither)."""
    def fold(row: Row | None, owned: bool = False) -> Row:
        if row is None:
            row = new_account(account_id, workspace, at, at)
            row.update(email=email, name=name, invitation_id=invitation_id, invited_by=by, last_invite_sent_at=at,
                       expires_at=expires_at)
            return row
        row = row if owned else dict(row)
        _first_invite(row, at)
        if row["email"] is None:
            row["email"] = email
        if row["name"] is None:
            row["name"] = name
        if row["invited_by"] is None:
            row["invited_by"] = by
        if not (row["last_invite_sent_at"] is not None and row["last_invite_sent_at"] > at):
            row["invitation_id"], row["expires_at"] = invitation_id, expires_at
        row["last_invite_sent_at"] = _greatest(row["last_invite_sent_at"], at)
        row["updated_at"] = _greatest(row["updated_at"], at)
        return row
    return fold


def account_changed(at: datetime, **columns: Any) -> Fold:
    """A staff action or a claim on an existing account (activated, revoked, disabled, re-enabled,
    resent): the columns it sets. No row yet cannot happen in partition order (AccountCreated
    comes first); the event then changes nothing (the caller says so in the log)."""
    def fold(row: Row | None, owned: bool = False) -> Row | None:
        if row is None:
            return None
        row = row if owned else dict(row)
        row.update(columns)
        row["updated_at"] = _greatest(row["updated_at"], at)
        return row
    return fold


def signed_in(at: datetime, signed_in_at: datetime) -> Fold:
    """A successful sign-in (a claim counts as the first): when the client last signed in, and how often."""
    def fold(row: Row | None, owned: bool = False) -> Row | None:
        if row is None:
            return None
        row = row if owned else dict(row)
        row["last_sign_in_at"] = _greatest(row["last_sign_in_at"], signed_in_at)
        row["sign_ins"] = (row["sign_ins"] or 0) + 1
        row["updated_at"] = _greatest(row["updated_at"], at)
        return row
    return fold


def sign_in_attempt(at: datetime, data: dict[str, Any], outcome: str) -> Fold:
    """The access tab's recent login activity: each sign-in or failed attempt (method, time, address,
    browser), newest first, the last RECENT_SIGN_INS kept. Folded in the account's event order,
    which Kafka keeps (one key), so live and replay keep the same ones."""
    attempted_at = data.get("at") or at
    entry = {
        "at": attempted_at.isoformat() if isinstance(attempted_at, datetime) else str(attempted_at),
        "method": data.get("method"),
        "outcome": outcome,
        "ip": data.get("ip"),
        "user_agent": data.get("user_agent"),
    }

    def fold(row: Row | None, owned: bool = False) -> Row | None:
        if row is None:
            return None
        row = row if owned else dict(row)
        row["recent_sign_ins"] = [entry, *(row.get("recent_sign_ins") or [])][:RECENT_SIGN_INS]
        row["updated_at"] = _greatest(row["updated_at"], at)
        return row
    return fold


def _resource_key(resource: dict[str, Any]) -> tuple[str, str]:
    return (str(resource.get("type")), str(resource.get("id")))


def trip_contact(
    account_id: Any, workspace: str, at: datetime, *, email: str | None, name: str | None, phone: str | None,
    contact_id: str | None, trip_id: str,
) -> Fold:
    """A traveler with an email seen in a share: a not_invited row with the trips they travel on,
    as a sorted set (trips arrive on different partitions in any order). An account's row is never touched."""
    trip = {"type": "trip", "id": trip_id}

    def fold(row: Row | None, owned: bool = False) -> Row | None:
        if row is None:
            row = new_account(account_id, workspace, at, NEVER)
            row.update(email=email.strip(" ").lower() if email is not None else None, name=name, phone=phone,
                       contact_id=contact_id, resources=[trip], status="not_invited")
            return row
        if row["status"] != "not_invited":
            return row
        row = row if owned else dict(row)
        merged = {_resource_key(r): r for r in [*row["resources"], trip]}
        row["resources"] = [merged[k] for k in sorted(merged)]
        row["invited_at"] = _least(row["invited_at"], at)
        return row
    return fold


def traveler_key(account_id: Any, contact_id: str | None, name: str | None) -> str:
    """Who a traveler is on the trip: their account identity, else the contact id, else the name."""
    if account_id is not None:
        return f"account:{account_id}"
    if contact_id:
        return f"contact:{contact_id}"
    return f"name:{(name or '').strip().lower()}"


def trip_traveler(
    workspace: str, trip_id: str, key: str, at: datetime, ord: int, *, contact_id: str | None, name: str | None,
    email: str | None, phone: str | None, is_primary: bool, account_id: Any,
) -> Fold:
    """A trip's traveler as first seen (place, time, account), with the newest share's details."""
    def fold(row: Row | None, owned: bool = False) -> Row:
        if row is None:
            return {"workspace": workspace, "trip_id": trip_id, "traveler_key": key, "first_seen_at": at, "ord": ord,
                    "contact_id": contact_id, "name": name, "email": email, "phone": phone,
                    "is_primary": is_primary, "account_id": account_id, "updated_at": at}
        if row["updated_at"] > at:
            return row
        row = row if owned else dict(row)
        for column, value in (("contact_id", contact_id), ("name", name), ("email", email), ("phone", phone)):
            if value is not None:
                row[column] = value
        row.update(is_primary=is_primary, updated_at=at)
        return row
    return fold


# Events -> the rows they touch. An event is given as its facts (`Fact`); `data` is its
# payload as a mapping, nested values as mappings too (the live projector gives its typed
# envelope's fields, replay the stored event's decoded JSON: the same names and values).

ACCOUNTS = "account_status"
TRAVELERS = "trip_travelers"
KEYS = {ACCOUNTS: ("account_id",), TRAVELERS: ("workspace", "trip_id", "traveler_key")}
Effect = tuple[str, tuple[Any, ...], Fold]  # (table, the row's key, what the event does to the row)


class Fact:
    __slots__ = ("type", "aggregate_id", "account_id", "workspace", "at", "by", "data")

    def __init__(self, type: str, aggregate_id: Any, account_id: Any, workspace: str, at: datetime, by: str,
                 data: Any) -> None:
        self.type, self.aggregate_id, self.account_id, self.workspace = type, aggregate_id, account_id, workspace
        self.at, self.by, self.data = at, by, data


def _plain(value: Any) -> Any:
    """A nested payload value as a mapping (a typed model's fields), whichever side gives it."""
    return value if isinstance(value, dict) else vars(value)


def _account_created(e: Fact) -> list[Effect]:
    d = e.data
    resources = d.get("resources")
    resources = [{"type": r["type"], "id": r["id"]} for r in map(_plain, resources)] if resources else []
    return [(ACCOUNTS, (e.aggregate_id,), account_created(
        e.aggregate_id, e.workspace, e.at, e.by, email=d["email"], name=d.get("name"), role=d["role"],
        company=d.get("company"), phone=d.get("phone"), contact_id=d.get("contact_id"), resources=resources,
        invitation_id=d["invitation_id"],
    ))]


def _invite_sent(e: Fact) -> list[Effect]:
    d = e.data
    account_id = e.account_id or d["account_id"]
    return [(ACCOUNTS, (account_id,), invite_sent(
        account_id, e.workspace, e.at, e.by, email=d["email"], name=d.get("name"), invitation_id=e.aggregate_id,
        expires_at=d["expires_at"],
    ))]


def _changed(columns: Callable[[Fact], dict[str, Any]]) -> Callable[[Fact], list[Effect]]:
    return lambda e: [(ACCOUNTS, (e.aggregate_id,), account_changed(e.at, **columns(e)))]


def _trip_shared(e: Fact) -> list[Effect]:
    d = e.data
    trip_id, at = d["trip_id"], _plain(d["share"])["occurred_at"]
    out: list[Effect] = []
    for index, traveler in enumerate(map(_plain, d.get("travelers") or ())):
        account_id, contact_id, name = traveler.get("account_id"), traveler.get("contact_id"), traveler.get("name")
        email, phone = traveler.get("email"), traveler.get("phone")
        key = traveler_key(account_id, contact_id, name)
        out.append((TRAVELERS, (e.workspace, trip_id, key), trip_traveler(
            e.workspace, trip_id, key, at, index, contact_id=contact_id, name=name, email=email, phone=phone,
            is_primary=bool(traveler.get("primary", False)), account_id=account_id,
        )))
        if account_id is not None:  # no usable email: no account could ever exist, so no row in the list
            out.append((ACCOUNTS, (account_id,), trip_contact(
                account_id, e.workspace, at, email=email, name=name, phone=phone, contact_id=contact_id,
                trip_id=trip_id,
            )))
    return out


# Every event type that changes a row; any other is only recorded as applied. A live handler
# in status_list.HANDLERS for a type missing here stops replay (deploy/replay.py).
EFFECTS: dict[str, Callable[[Fact], list[Effect]]] = {
    "AccountCreated": _account_created,
    "InviteSent": _invite_sent,
    "AccountActivated": _changed(lambda e: {"status": "active", "activated_at": e.at}),
    "InviteRevoked": _changed(lambda e: {"status": "disabled", "disabled_at": e.data["at"], "disabled_by": e.by,
                                         "disabled_reason": None}),
    "AccessDisabled": _changed(lambda e: {"status": "disabled", "disabled_at": e.data["at"], "disabled_by": e.by,
                                          "disabled_reason": e.data.get("reason")}),
    "AccessReenabled": _changed(lambda e: {"status": e.data["status"], "disabled_at": None, "disabled_by": None,
                                           "disabled_reason": None}),
    "InviteResent": _changed(lambda e: {"status": "pending"}),
    "SignedIn": lambda e: [(ACCOUNTS, (e.aggregate_id,), signed_in(e.at, e.data["at"])),
                           (ACCOUNTS, (e.aggregate_id,), sign_in_attempt(e.at, e.data, "signed_in"))],
    "VerificationFailed": lambda e: [(ACCOUNTS, (e.aggregate_id,), sign_in_attempt(e.at, e.data, "failed"))],
    "TripFirstShared": _trip_shared,
    "TripShared": _trip_shared,
}


def effects(fact: Fact) -> list[Effect]:
    make = EFFECTS.get(fact.type)
    return make(fact) if make is not None else []
