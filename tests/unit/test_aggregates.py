"""Aggregates without I/O: the rules live here, not in the database or the HTTP layer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.invite_service.domain import ids
from services.invite_service.domain.errors import InvalidState, LinkInvalid, PlanRequired, PortalDisabled, UnknownRole
from services.invite_service.domain.invitation import Invitation
from services.invite_service.domain.portal_account import PortalAccount
from services.invite_service.domain.workspace import Workspace

STAFF = {"kind": "staff", "id": "s1", "reason": None}
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def account(**overrides) -> PortalAccount:
    fields = dict(workspace="ws", email="a@example.com", name="A", role="customer", company=None, phone=None,
                  contact_id=None, resources=[], invitation_id=uuid4(), actor=STAFF)
    return PortalAccount(**{**fields, **overrides})


def invitation(expires_at=NOW + timedelta(days=7)) -> Invitation:
    return Invitation(workspace="ws", account_id=uuid4(), email="a@example.com", name="A", nonce="n1",
                      expires_at=expires_at, channels=["email"], method="manual", sender={}, actor=STAFF)


def test_account_id_is_derived_from_workspace_and_email():
    assert account().id == ids.account_id("ws", "a@example.com") == account().id
    assert account(email="b@example.com").id != account().id
    assert account(workspace="other").id != account().id


def test_new_account_is_pending_and_offers_pending_actions():
    created = account()
    assert created.status == "pending" and created.access_epoch == 0
    assert created.allowed_actions == ["resend", "revoke"]


def test_activate_only_from_pending():
    acc = account()
    acc.activate(invitation_id=acc.invitation_id, actor=STAFF)
    assert acc.status == "active" and acc.allowed_actions == ["disable", "password-reset"]
    with pytest.raises(InvalidState) as raised:
        acc.activate(invitation_id=acc.invitation_id, actor=STAFF)
    assert raised.value.extra["allowed"] == ["disable", "password-reset"]
    assert [type(e).__name__ for e in acc.collect_events()] == ["AccountCreated", "AccountActivated"]


def test_invitation_is_single_use_and_expires():
    inv = invitation()
    inv.claim(at=NOW, actor=STAFF)
    with pytest.raises(LinkInvalid):
        inv.claim(at=NOW, actor=STAFF)
    late = invitation(expires_at=NOW)
    with pytest.raises(LinkInvalid):
        late.claim(at=NOW, actor=STAFF)
    assert [type(e).__name__ for e in late.collect_events()] == ["InviteSent"]


def test_invitation_event_holds_the_nonce_and_expiry_never_a_link():
    event = invitation().collect_events()[0]
    assert event.nonce == "n1" and event.expires_at == NOW + timedelta(days=7)
    assert not any("token" in name or "link" in name for name in vars(event))


def test_workspace_defaults_and_gate():
    ws = Workspace(slug="pride", settings={"name": "Pride"}, actor=STAFF)
    assert ws.settings["invite_ttl_hours"] == 168 and ws.settings["plan"] == "free"
    with pytest.raises(PlanRequired):
        ws.check_can_invite("customer")
    ws.change_settings(changes={"plan": "pro", "portal_enabled": False}, actor=STAFF)
    with pytest.raises(PortalDisabled):
        ws.check_can_invite("customer")
    ws.change_settings(changes={"portal_enabled": True}, actor=STAFF)
    ws.check_can_invite("charter_client")
    with pytest.raises(UnknownRole):
        ws.check_can_invite("shipper")
    ws.change_settings(changes={"roles": ["shipper"]}, actor=STAFF)
    ws.check_can_invite("shipper")


def test_workspace_branding_merges_and_repeats_record_nothing():
    ws = Workspace(slug="pride", settings={"branding": {"sender_name": "Pride Travelers"}}, actor=STAFF)
    assert ws.changes_from({"branding": {"brand_color": "#112233"}}) == {
        "branding": {"sender_name": "Pride Travelers", "logo_url": None, "brand_color": "#112233"}
    }
    assert ws.changes_from({"branding": {"sender_name": "Pride Travelers"}}) == {}
    assert ws.sender["sender_name"] == "Pride Travelers" and ws.sender["workspace_name"] == "pride"
