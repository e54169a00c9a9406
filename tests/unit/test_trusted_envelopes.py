"""Replay assembles envelopes around validated payloads (trusted_envelope) instead of validating
the whole envelope again: the result must equal the relay's, field for field."""

from __future__ import annotations

from eventsourcing.application import Application

from services.invite_service.commands.invitations import InviteCommand, _new_invite
from services.invite_service.domain.workspace import Workspace
from services.invite_service.envelopes import origin_of_created, to_envelope, trusted_envelope

ACTOR = {"kind": "staff", "id": "staff-1", "reason": None}


def test_trusted_envelopes_equal_validated_ones():
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    workspace = Workspace("acme", {"plan": "pro"}, ACTOR)
    account, invitation = _new_invite(
        workspace, "acme", InviteCommand(email="ana@example.com", name="Ana", role="customer", company="Acme",
                                         resources=({"type": "trip", "id": "T-1"},)), ACTOR, "manual")
    account.revoke(account.created_on, ACTOR)
    events = [*account.collect_events(), *invitation.collect_events()]
    for position, event in enumerate(events, start=1):
        decoded = app.mapper.to_domain_event(app.mapper.to_stored_event(event))  # as replay reads it
        origin = origin_of_created(decoded) if decoded.originator_version == 1 else ("acme", account.id)
        trusted, validated = trusted_envelope(decoded, position, origin), to_envelope(decoded, position, origin)
        assert type(trusted) is type(validated)
        assert trusted == validated
        assert trusted.model_dump_json() == validated.model_dump_json()
        assert trusted.key == validated.key and trusted.headers == validated.headers
