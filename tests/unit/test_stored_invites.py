"""A bulk's rows are stored without aggregate objects (StoredInvites): what they store must be
what the aggregates would have stored, so every reader decodes the same domain events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from eventsourcing.application import Application

from services.invite_service.commands import invitations
from services.invite_service.commands.invitations import InviteCommand, StoredInvites, _new_invite
from services.invite_service.domain import ids
from services.invite_service.domain.workspace import Workspace

ACTOR = {"kind": "staff", "id": "staff-1", "reason": None}
RANDOM = {"timestamp", "nonce", "expires_at", "invitation_id"}  # differ between any two invites


def _pair(app: Application, workspace: Workspace, cmd: InviteCommand):
    account_id = ids.account_id("acme", cmd.email)
    fast = StoredInvites(app.mapper).build(workspace, "acme", [(cmd, account_id)], ACTOR, "manual")[0].events
    account, invitation = _new_invite(workspace, "acme", cmd, ACTOR, "manual")
    slow = [app.mapper.to_stored_event(e) for e in (*account.collect_events(), *invitation.collect_events())]
    return fast, slow


def test_a_bulk_row_stores_what_the_aggregates_would_store():
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    workspace = Workspace("acme", {"plan": "pro", "invite_ttl_hours": 48, "branding": {"sender_name": "Acme"}}, ACTOR)
    cmd = InviteCommand(email="ana@bücher.example", name="Ana Lima", role="customer", company="Bücher GmbH",
                        phone="+14155550123", contact_id="c-1", resources=({"type": "trip", "id": "T-1"},),
                        channels=("email", "sms"), address="Ana@Bücher.example")
    fast, slow = _pair(app, workspace, cmd)
    assert [(s.originator_id, s.originator_version, s.topic) for s in fast][0] == (
        slow[0].originator_id, 1, slow[0].topic)
    assert [(s.originator_version, s.topic) for s in fast] == [(s.originator_version, s.topic) for s in slow]
    for f, s in zip(fast, slow, strict=True):
        f_state, s_state = app.mapper.transcoder.decode(f.state), app.mapper.transcoder.decode(s.state)
        assert list(f_state) == list(s_state)  # the same keys, in the same order
        assert {k: v for k, v in f_state.items() if k not in RANDOM} == {
            k: v for k, v in s_state.items() if k not in RANDOM}
        assert abs(f_state["timestamp"] - s_state["timestamp"]) < timedelta(seconds=5)
    created, sent = (app.mapper.transcoder.decode(f.state) for f in fast)
    assert created["invitation_id"] == fast[1].originator_id and sent["account_id"] == fast[0].originator_id
    assert sent["expires_at"] - sent["timestamp"] == timedelta(hours=48)


def test_stored_rows_decode_into_the_aggregates_with_the_state_the_library_gives():
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    workspace = Workspace("acme", {"plan": "pro"}, ACTOR)
    fast, slow = _pair(app, workspace, InviteCommand(email="bo@example.com", name=None, role="customer"))
    for f, s in zip(fast, slow, strict=True):
        f_event, s_event = app.mapper.to_domain_event(f), app.mapper.to_domain_event(s)
        assert type(f_event) is type(s_event)
        f_agg, s_agg = f_event.mutate(None), s_event.mutate(None)
        ignore = {"_created_on", "_modified_on", "nonce", "expires_at", "invitation_id", "_id"}
        assert {k: v for k, v in vars(f_agg).items() if k not in ignore} == {
            k: v for k, v in vars(s_agg).items() if k not in ignore}
    # Byte for byte: the same encoder on the same dict.
    f_state = app.mapper.transcoder.decode(fast[0].state)
    s_state = app.mapper.transcoder.decode(slow[0].state)
    f_state.update({k: s_state[k] for k in RANDOM if k in s_state})
    assert app.mapper.transcoder.encode(f_state) == slow[0].state


def test_the_template_writes_what_the_transcoder_writes(monkeypatch):
    """The per-bulk template (the library's JSON transcoder) and the state dict through `encode`
    store the same bytes, also for values that need escaping or a % sign."""
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    workspace = Workspace("a%sb", {"plan": "pro", "roles": ['100% "vip"'], "branding": {"sender_name": "Ünï %d"}}, ACTOR)
    rows = [
        (InviteCommand(email="x@example.com", name='Zoë "Z" 50%', role='100% "vip"', company="A\\B\n",
                       contact_id="c%s", resources=({"type": "trip", "id": "T%1"},), address="X@Example.com"),
         ids.account_id("a%sb", "x@example.com")),
        (InviteCommand(email="y@example.com", name=None, role="customer"), ids.account_id("a%sb", "y@example.com")),
    ]
    actor = {"kind": "system", "id": None, "reason": "50% off"}
    monkeypatch.setattr(invitations.os, "urandom", lambda n: b"\x01" * n)
    monkeypatch.setattr(invitations.tokens, "new_nonces", lambda n: ["n%s1", "n2"][:n])
    monkeypatch.setattr(invitations, "_now", lambda: datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    direct, through_encode = StoredInvites(app.mapper), StoredInvites(app.mapper)
    through_encode._direct = False
    assert direct._direct
    written = direct.build(workspace, "a%sb", rows, actor, "bulk")
    assert written == through_encode.build(workspace, "a%sb", rows, actor, "bulk")
    for row in written:
        for stored in row.events:
            assert app.mapper.transcoder.encode(app.mapper.transcoder.decode(stored.state)) == stored.state
        sent = app.mapper.transcoder.decode(row.events[1].state)
        assert (row.invitation_id, row.expires_at) == (row.events[1].originator_id, sent["expires_at"])
