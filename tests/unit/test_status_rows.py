"""The read models' rules (projections/status_rows.py) end in the same row whatever order Kafka
delivers different keys' events in: what lets replay fold the log in its own order and still
equal the live projector (tests/integration/test_replay.py checks the two row for row)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from projections import status_rows
from projections.status_rows import Fact

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ACCOUNT, INVITATION = uuid4(), uuid4()


def created(at=T0):
    return Fact("AccountCreated", ACCOUNT, ACCOUNT, "ws", at, "staff-1", {
        "email": "ana@example.com", "name": "Ana", "role": "customer", "company": None, "phone": None,
        "contact_id": "c-1", "resources": [{"type": "trip", "id": "T-9"}], "invitation_id": INVITATION})


def sent(at=T0, invitation=INVITATION):
    return Fact("InviteSent", invitation, ACCOUNT, "ws", at, "staff-1", {
        "account_id": ACCOUNT, "email": "ana@example.com", "name": "Ana", "expires_at": at + timedelta(days=7)})


def shared(trip: str, at: datetime):
    return Fact("TripShared", uuid4(), None, "ws", at, "system", {
        "trip_id": trip, "share": {"occurred_at": at},
        "travelers": [{"account_id": ACCOUNT, "email": " Ana@Example.com", "name": "Ana", "contact_id": "c-1"}]})


def fold(facts):
    rows: dict = {}
    for fact in facts:
        for table, key, apply in status_rows.effects(fact):
            after = apply(rows.get((table, key)))
            if after is not None:
                rows[(table, key)] = after
    return rows


def test_account_and_invite_in_either_order_with_shares_before_or_after_end_the_same():
    events = [created(), sent(), shared("T-2", T0 - timedelta(days=1)), shared("T-1", T0 + timedelta(hours=1))]
    # Kafka keeps one key's order: the invitation's events among themselves, the account's, each trip's.
    results = {repr(sorted(fold(order).items(), key=repr)) for order in itertools.permutations(events)}
    assert len(results) == 1
    row = fold(events)[("account_status", (ACCOUNT,))]
    assert (row["status"], row["invited_at"], row["updated_at"]) == ("pending", T0, T0)
    assert row["resources"] == [{"type": "trip", "id": "T-9"}]  # an account's own resources, not the shares'


def test_a_contact_only_seen_in_shares_is_not_invited_with_its_trips_sorted():
    for order in itertools.permutations([shared("T-2", T0), shared("T-1", T0 + timedelta(days=1))]):
        row = fold(order)[("account_status", (ACCOUNT,))]
        assert row["status"] == "not_invited" and row["email"] == "ana@example.com"
        assert [r["id"] for r in row["resources"]] == ["T-1", "T-2"]
        assert (row["invited_at"], row["updated_at"]) == (T0, status_rows.NEVER)


def test_only_the_newest_invite_sets_link_and_expiry():
    later = uuid4()
    for order in ([sent(), sent(T0 + timedelta(hours=2), later)], [sent(T0 + timedelta(hours=2), later), sent()]):
        row = fold([created(), *order])[("account_status", (ACCOUNT,))]
        assert (row["invitation_id"], row["last_invite_sent_at"]) == (later, T0 + timedelta(hours=2))


def test_an_action_on_an_unknown_account_changes_nothing():
    assert fold([Fact("AccessDisabled", ACCOUNT, ACCOUNT, "ws", T0, "staff-1", {"at": T0, "reason": None})]) == {}


def test_every_event_type_the_live_projector_handles_has_its_rule():
    """Replay applies only the rules (deploy/replay.py refuses to start otherwise): a live handler
    whose type has none would be left out of every rebuild."""
    from projections import status_list
    from services.common.event_routing import handled_type

    assert {handled_type(h) for h in status_list.HANDLERS} <= set(status_rows.EFFECTS)


def test_sign_ins_count_and_keep_the_latest():
    signed = [Fact("SignedIn", ACCOUNT, ACCOUNT, "ws", T0 + timedelta(hours=h), "client", {"at": T0 + timedelta(hours=h)})
              for h in (3, 1)]
    row = fold([created(), sent(), *signed])[("account_status", (ACCOUNT,))]
    assert (row["sign_ins"], row["last_sign_in_at"], row["updated_at"]) == (2, T0 + timedelta(hours=3),
                                                                            T0 + timedelta(hours=3))
