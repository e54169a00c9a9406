"""Every domain event the aggregates record has a typed contract, and the relay's envelope
of it reads back as that contract: an `@event` added without a payload model fails here,
not on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate, DomainEvent

from contracts.access import ENVELOPES, PAYLOADS, AccessEventV1, parse_access_event
from services.invite_service.domain.invitation import Invitation
from services.invite_service.domain.portal_account import PortalAccount
from services.invite_service.domain.trip import Trip
from services.invite_service.domain.workspace import Workspace
from services.invite_service.envelopes import Origins, to_envelope

AGGREGATES = (Workspace, PortalAccount, Invitation, Trip)
STAFF = {"kind": "staff", "id": "staff-1", "reason": None}
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def domain_event_types(aggregate: type[Aggregate]) -> set[str]:
    """The event classes `@event` declared on an aggregate (not its `Event`/`Created` bases)."""
    return {
        name
        for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, DomainEvent)
        and value not in (aggregate.Event, aggregate.Created)
    }


def every_event() -> list[DomainEvent]:
    """One of each event type, recorded by the aggregates' own commands."""
    workspace = Workspace(slug="pride", settings={"name": "Pride", "plan": "pro"}, actor=STAFF)
    workspace.change_settings(
        changes={"branding": {"brand_color": "#0B7A75"}, "roles": ["assistant"], "team_notify_email": None},
        actor=STAFF,
    )
    invitation_id = uuid4()
    account = PortalAccount(
        workspace="pride", email="ana@example.com", name="Ana", role="customer", company="Acme",
        phone="+14155550123", contact_id="c-1", resources=[{"type": "trip", "id": "T-1"}],
        invitation_id=invitation_id, actor=STAFF,
    )
    invitation = Invitation(
        workspace="pride", account_id=account.id, email="ana@example.com", name=None, nonce="n-1",
        expires_at=NOW + timedelta(days=7), channels=["email"], method="manual", sender=workspace.sender,
        actor=STAFF,
    )
    invitation.claim(at=NOW, actor={"kind": "client", "id": str(account.id), "reason": None})
    account.activate(invitation_id=invitation_id, actor={"kind": "client", "id": str(account.id), "reason": None})
    # Then every staff action: disable, re-enable, reset, disable, reactivate (a fresh
    # invitation), resend (voiding that one), revoke.
    account.disable(at=NOW, reason="left the company", actor=STAFF)
    account.reenable(actor=STAFF)
    account.request_password_reset(
        nonce="r-1", expires_at=NOW + timedelta(hours=1), email="Ana@Example.com", name="Ana", sender=workspace.sender,
        actor=STAFF,
    )
    # The client signs in every way: a password set from the reset, a magic link, a code,
    # and five wrong codes that lock it out.
    client = {"kind": "client", "id": str(account.id), "reason": None}
    account.set_password(at=NOW, reason="reset", actor=client)
    account.sign_in(method="password", at=NOW, ip="203.0.113.7", user_agent="Firefox", actor=client)
    account.request_magic_link(nonce="m-1", expires_at=NOW + timedelta(minutes=15), email="ana@example.com",
                               sender=workspace.sender, actor=client)
    account.sign_in(method="magic_link", at=NOW, ip=None, user_agent=None, actor=client)
    account.issue_code(nonce="c-1", expires_at=NOW + timedelta(minutes=10), at=NOW, email="ana@example.com",
                       channels=["email", "sms"], sender=workspace.sender, actor=client)
    for _ in range(5):
        account.fail_verification(method="code", at=NOW, ip="203.0.113.7", user_agent=None, sender=workspace.sender,
                                  actor=client)
    account.disable(at=NOW, reason=None, actor=STAFF)
    second = Invitation(
        workspace="pride", account_id=account.id, email="ana@example.com", name="Ana", nonce="n-2",
        expires_at=NOW + timedelta(days=7), channels=["email"], method="reactivate", sender=workspace.sender,
        actor=STAFF,
    )
    account.reactivate(invitation_id=second.id, expires_at=second.expires_at, at=NOW, actor=STAFF)
    second.void(reason="superseded", at=NOW, actor=STAFF)
    account.resend(invitation_id=uuid4(), expires_at=NOW + timedelta(days=7), at=NOW, actor=STAFF)
    account.revoke(at=NOW, actor=STAFF)
    system = {"kind": "system", "reason": "first invoice share",
              "cause": {"event_id": str(uuid4()), "trip_id": "T-1", "kind": "invoice", "shared_by": "staff-1"}}
    share = {"event_id": str(uuid4()), "kind": "invoice", "shared_by": "staff-1", "occurred_at": NOW.isoformat()}
    ana = {"contact_id": "c-1", "name": "Ana", "email": "Ana@Example.com", "phone": None, "primary": True,
           "account_id": str(account.id)}
    trip = Trip(workspace="pride", trip_id="T-1", share=share, travelers=[ana], actor=system,
                auto_invite={"outcome": "skipped", "reason": "account_exists", "account_id": str(account.id),
                             "invitation_id": None, "email": "ana@example.com"})
    trip.record_share(share={**share, "event_id": str(uuid4()), "kind": "proposal"}, travelers=[ana], actor=system)
    return [
        *workspace.collect_events(), *account.collect_events(), *invitation.collect_events(),
        *second.collect_events(), *trip.collect_events(),
    ]


EVENTS = every_event()


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: a.__name__)
def test_every_domain_event_type_has_a_payload_model_and_envelope(aggregate):
    declared = domain_event_types(aggregate)
    assert declared, f"no events found on {aggregate.__name__}"
    missing = declared - set(PAYLOADS)
    assert not missing, f"add a payload model and typed envelope to contracts.access for {sorted(missing)}"
    assert declared <= set(ENVELOPES)


def test_the_story_covers_every_declared_event_type():
    declared = set().union(*(domain_event_types(a) for a in AGGREGATES))
    assert {type(e).__name__ for e in EVENTS} == declared


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_an_envelope_reads_back_as_its_typed_contract(event):
    first_events = {e.originator_id: e for e in EVENTS if e.originator_version == 1}
    origins = Origins(first_events.__getitem__)
    envelope = to_envelope(event, position=42, origin=origins.of(event))
    name = type(event).__name__

    parsed = parse_access_event(envelope.model_dump_json())

    assert type(parsed) is type(envelope) is ENVELOPES[name]
    assert isinstance(parsed.data, PAYLOADS[name])
    assert parsed.model_dump(mode="json") == envelope.model_dump(mode="json")
    assert parsed.headers == [("type", name.encode())]


def test_an_unknown_type_stays_a_plain_envelope_and_unknown_fields_are_ignored():
    event = EVENTS[0]
    envelope = to_envelope(event, position=1, origin=("pride", None))
    body = envelope.model_dump(mode="json") | {"type": "SomethingInvented", "data": {"colour": "teal"}}
    body["actor"] = body["actor"] | {"team": "night shift"}

    parsed = parse_access_event(body)

    assert type(parsed) is AccessEventV1 and parsed.data == {"colour": "teal"}


def test_envelopes_derive_the_contract_event_id():
    """The relay and replay derive event ids with envelopes.fast_event_id: the contract's ids."""
    from uuid import uuid4

    from contracts.access import event_id_for
    from services.invite_service.envelopes import fast_event_id

    for version in (1, 2, 17, 10_000):
        aggregate_id = uuid4()
        assert fast_event_id(aggregate_id, version) == event_id_for(aggregate_id, version)
        assert str(fast_event_id(aggregate_id, version)) == str(event_id_for(aggregate_id, version))


def test_replays_event_ids_are_the_contracts():
    """Replay's workers derive event ids as hex digits (event_ids.event_id_hex), with the namespace
    their spec carries (stored_facts.event_id_namespace), from the id's text or the UUID."""
    from uuid import uuid4

    from contracts.access import event_id_for
    from services.invite_service.event_ids import event_id_hex
    from services.invite_service.stored_facts import event_id_namespace

    for version in (1, 2, 17, 10_000):
        aggregate_id = uuid4()
        expected = event_id_for(aggregate_id, version).hex
        assert event_id_hex(event_id_namespace(), str(aggregate_id), version) == expected
        assert event_id_hex(event_id_namespace(), aggregate_id, version) == expected
