"""Replay's workers each fold a part of the rows (deploy/replay_batch.py): every event is
decoded and claimed by its aggregate's part, and handed to the parts whose rows it touches.
Together they must end in the rows one fold of the whole log ends in, and keep each
aggregate's own events in order (an account's sign-ins, a trip's shares)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from deploy.replay_batch import ReadModelFold, part_of, part_of_originator
from services.invite_service.stored_facts import StoredFact

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PROJECTION = "status_list"


class _Log:
    def __init__(self) -> None:
        self.facts: list[StoredFact] = []
        self.versions: dict[UUID, int] = {}

    def add(self, type_: str, aggregate: UUID, account: UUID | None, at: datetime, data: dict, by: str = "staff-1"):
        version = self.versions[aggregate] = self.versions.get(aggregate, 0) + 1
        position = len(self.facts) + 1
        self.facts.append(StoredFact(type_, aggregate, version, position, f"{position:032x}", "ws", account, at, by,
                                     data))


def _log(accounts: int = 24) -> list[StoredFact]:
    """Invites (two aggregates per account), claims, sign-ins, staff actions, and trips shared
    with several accounts, interleaved as a busy log would have them."""
    rng = random.Random(7)
    log = _Log()
    ids = [uuid4() for _ in range(accounts)]
    trips = [(uuid4(), f"T-{n}") for n in range(4)]
    for n, account in enumerate(ids):
        at = T0 + timedelta(minutes=n)
        invitation = uuid4()
        log.add("AccountCreated", account, account, at, {
            "email": f"c{n}@example.com", "name": f"Client {n}", "role": "customer", "company": None,
            "phone": None, "contact_id": f"c-{n}", "resources": [], "invitation_id": invitation})
        log.add("InviteSent", invitation, account, at, {
            "account_id": account, "email": f"c{n}@example.com", "name": f"Client {n}",
            "expires_at": at + timedelta(days=7)})
        if n % 3 == 0:
            trip, trip_id = trips[n % len(trips)]
            travelers = [{"account_id": a, "email": f"t{a.hex[:6]}@example.com", "name": None, "contact_id": None,
                          "primary": i == 0} for i, a in enumerate(rng.sample(ids[: n + 1], min(3, n + 1)))]
            first = trip not in log.versions
            log.add("TripFirstShared" if first else "TripShared", trip, None, at,
                    {"trip_id": trip_id, "share": {"occurred_at": at}, "travelers": travelers}, by="system")
    for n in range(accounts * 3):
        account = rng.choice(ids)
        at = T0 + timedelta(hours=1, minutes=n)
        kind = rng.choice(["SignedIn", "VerificationFailed", "AccessDisabled", "AccessReenabled", "InviteResent"])
        data = {"at": at, "method": rng.choice(["magic_link", "code"]), "reason": None, "status": "active"}
        by = "client" if kind in ("SignedIn", "VerificationFailed") else "staff"
        log.add(kind, account, account, at, data, by=by)
    return log.facts


def _in_parts(facts: list[StoredFact], parts: int, pages: int = 5) -> tuple[list[ReadModelFold], int]:
    """As the workers fold: by pages; each page's events handed on are folded with the next page.
    Answers the parts' folds and how many events were handed on."""
    folds = [ReadModelFold(PROJECTION, part, parts) for part in range(parts)]
    count = 0
    handed: list[list[StoredFact]] = [[] for _ in range(parts)]
    size = -(-len(facts) // pages)
    for start in range(0, len(facts), size):
        page = facts[start:start + size]
        for part, fold in enumerate(folds):
            own = [f for f in page if part_of_originator(str(f.aggregate_id), parts) == part]
            for other, indexes in fold.fold(own).items():
                handed[other].extend(own[i] for i in indexes)
        for part, fold in enumerate(folds):
            count += len(handed[part])
            fold.fold(handed[part], own=False)
            handed[part] = []
    return folds, count


def test_parts_together_fold_what_one_fold_does():
    facts = _log()
    whole = ReadModelFold(PROJECTION)
    whole.fold(facts)
    for parts in (2, 3):
        folds, handed = _in_parts(facts, parts)
        assert handed > 0  # invites and trips touch other parts' rows
        for table, rows in whole.rows.items():
            merged: dict = {}
            for fold in folds:
                assert not merged.keys() & fold.rows[table].keys(), "a row belongs to one part only"
                merged.update(fold.rows[table])
                assert all(part_of(key, parts) == fold.part for key in fold.rows[table])
            assert merged == rows, table
        claims = sorted(c for fold in folds for c in fold.claims)
        assert claims == sorted(whole.claims), "every event claimed once, by its aggregate's part"
        assert sum(fold.events for fold in folds) == len(facts)


def test_an_aggregates_events_stay_in_order_in_its_part():
    """An account's sign-ins keep their order (the access tab's newest first), whatever part holds it."""
    facts = _log()
    folds, _ = _in_parts(facts, 2)
    whole = ReadModelFold(PROJECTION)
    whole.fold(facts)
    for key, row in whole.rows["account_status"].items():
        part = folds[part_of(key, 2)]
        assert part.rows["account_status"][key]["recent_sign_ins"] == row["recent_sign_ins"]
    assert any(row["recent_sign_ins"] for row in whole.rows["account_status"].values())


def test_an_account_and_its_aggregates_events_are_in_the_same_part():
    """An account's row is its own aggregate's part: its events are folded where they are decoded."""
    for _ in range(100):
        account = uuid4()
        assert part_of((account,), 2) == part_of_originator(str(account), 2)
        assert part_of((account,), 3) == part_of_originator(str(account), 3)


def test_an_invitations_events_go_to_its_accounts_part_and_are_decoded_once():
    """The reading process splits raw rows by `Parts.of`: an invitation's InviteSent goes where its
    account's row is (found in the stored bytes), so no part hands it on to be decoded again; and
    the parts together still fold what one fold does."""
    from eventsourcing.application import Application

    from deploy.replay_batch import Parts
    from services.invite_service.commands.invitations import InviteCommand, _new_invite
    from services.invite_service.domain.workspace import Workspace
    from services.invite_service.stored_facts import StoredFacts

    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    actor = {"kind": "staff", "id": "staff-1", "reason": None}
    workspace = Workspace("acme", {"plan": "pro"}, actor)
    events: list = [*workspace.collect_events()]
    accounts = []
    for n in range(40):
        cmd = InviteCommand(email=f"c{n}@example.com", name=f"Client {n}", role="customer", company="Acme")
        account, invitation = _new_invite(workspace, "acme", cmd, actor, "manual")
        accounts.append(account.id)
        events += [*account.collect_events(), *invitation.collect_events()]
    rows = [(position, str(s.originator_id), s.originator_version, s.topic, s.state)
            for position, s in enumerate(map(app.mapper.to_stored_event, events), 1)]
    names = dict(app.mapper.transcoder.names)
    whole = ReadModelFold(PROJECTION)
    whole.fold(StoredFacts.from_transcodings(names, lambda: app).rows(rows))
    for count in (2, 3):
        parts = Parts(count)
        split: list[list] = [[] for _ in range(count)]
        for row in rows:
            split[parts.of(row)].append(row)
        folds = [ReadModelFold(PROJECTION, part, count) for part in range(count)]
        for part, fold in enumerate(folds):
            assert fold.fold(StoredFacts.from_transcodings(names, lambda: app).rows(split[part])) == {}
        invitations = [r for r in rows if r[3].endswith(".InviteSent")]
        assert len(invitations) == 40
        for row in invitations:
            (fact,) = StoredFacts.from_transcodings(names, lambda: app).rows([row])
            assert fact.account_id in accounts and row in split[part_of((fact.account_id,), count)]
        assert any(parts.of(row) != part_of_originator(row[1], count) for row in invitations)
        assert all(parts.of(row) == part_of_originator(row[1], count) for row in rows if row not in invitations)
        for table, table_rows in whole.rows.items():
            merged: dict = {}
            for fold in folds:
                merged.update(fold.rows[table])
            assert merged == table_rows, table
        assert sorted(c for fold in folds for c in fold.claims) == sorted(whole.claims)
