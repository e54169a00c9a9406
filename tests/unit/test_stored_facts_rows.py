"""Replay's workers decode raw rows (the log follower's RawRow tuples) with the transcoder's
transcodings alone (StoredFacts.from_transcodings), and build the Application only for an
event the fast path cannot read. Both paths must give the facts that fold into the same rows."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from deploy.replay_batch import ReadModelFold
from services.invite_service.commands.invitations import InviteCommand, _new_invite
from services.invite_service.domain.workspace import Workspace
from services.invite_service.stored_facts import StoredFacts

ACTOR = {"kind": "staff", "id": "staff-1", "reason": None}


def _rows(app: Application) -> list[tuple]:
    workspace = Workspace("acme", {"plan": "pro", "invite_ttl_hours": 48}, ACTOR)
    events = []
    for n in range(3):
        cmd = InviteCommand(email=f"c{n}@example.com", name=f"Client {n}", role="customer", company="Acme",
                            resources=({"type": "trip", "id": f"T-{n}"},))
        account, invitation = _new_invite(workspace, "acme", cmd, ACTOR, "manual")
        events += [*account.collect_events(), *invitation.collect_events()]
    stored = [app.mapper.to_stored_event(e) for e in events]
    return [(position, str(s.originator_id), s.originator_version, s.topic, s.state)
            for position, s in enumerate(stored, 1)]


def _folded(facts) -> dict:
    model = ReadModelFold("status_list")
    model.fold(facts)
    return {"rows": model.rows, "claims": model.claims}


def test_the_fast_path_and_the_mappers_fold_into_the_same_rows_and_claims():
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    rows = _rows(app)

    def no_app():
        raise AssertionError("the fast path needs no Application")

    fast = StoredFacts.from_transcodings(dict(app.mapper.transcoder.names), no_app).rows(rows)
    through_mapper = StoredFacts.from_transcodings(None, lambda: app).rows(rows)
    assert [f[:9] for f in fast] == [f[:9] for f in through_mapper]  # all but the payload's shape
    assert _folded(fast) == _folded(through_mapper)
    assert _folded(fast)["rows"]["account_status"]


def test_a_notification_page_and_its_raw_rows_give_the_same_facts():
    """The swap's tail is read as the library's Notifications, the build as raw rows."""
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    rows = _rows(app)
    page = [Notification(id=p, originator_id=UUID(o), originator_version=v, topic=t, state=s) for p, o, v, t, s in rows]
    names = dict(app.mapper.transcoder.names)
    assert StoredFacts.from_transcodings(names, lambda: app)(page) == \
        StoredFacts.from_transcodings(names, lambda: app).rows(rows)
