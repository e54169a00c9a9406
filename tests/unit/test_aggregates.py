"""Aggregates without I/O: the rules live here, not in the database or the HTTP layer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.invite_service.domain import ids
from services.invite_service.domain.errors import (
    InvalidState,
    LinkInvalid,
    PlanRequired,
    PortalDisabled,
    TooManyResends,
    UnknownRole,
)
from services.invite_service.domain.invitation import Invitation
from services.invite_service.domain.portal_account import PortalAccount
from services.invite_service.domain.workspace import Workspace

STAFF = {"kind": "staff", "id": "s1", "reason": None}
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RESET_TO = {"email": "A@example.com", "name": "A", "sender": {"workspace_name": "W", "sender_name": "W"}}


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


# Staff actions: each allowed only where `allowed_actions` says, each recorded as one event.


def active_account() -> PortalAccount:
    acc = account()
    acc.activate(invitation_id=acc.invitation_id, actor=STAFF)
    return acc


def disabled_account(was_active: bool = True) -> PortalAccount:
    acc = active_account() if was_active else account()
    if was_active:
        acc.disable(at=NOW, reason=None, actor=STAFF)
    else:
        acc.revoke(at=NOW, actor=STAFF)
    return acc


def event_names(acc: PortalAccount) -> list[str]:
    return [type(e).__name__ for e in acc.collect_events()]


def refused(call, allowed: list[str]) -> None:
    with pytest.raises(InvalidState) as raised:
        call()
    assert raised.value.extra["allowed"] == allowed
    assert all(action in raised.value.detail for action in allowed)


def test_resend_points_at_the_new_invitation_and_only_when_pending():
    acc, fresh = account(), uuid4()
    acc.resend(invitation_id=fresh, expires_at=NOW + timedelta(days=7), at=NOW, actor=STAFF)
    assert acc.invitation_id == fresh and acc.status == "pending"
    assert event_names(acc)[-1] == "InviteResent"
    refused(lambda: active_account().resend(invitation_id=uuid4(), expires_at=NOW, at=NOW, actor=STAFF),
            ["disable", "password-reset"])


def test_resend_limit_is_ten_an_hour_and_says_when_to_retry():
    acc = account()
    for minute in range(10):
        acc.resend(invitation_id=uuid4(), expires_at=NOW, at=NOW + timedelta(minutes=minute), actor=STAFF)
    with pytest.raises(TooManyResends) as raised:
        acc.resend(invitation_id=uuid4(), expires_at=NOW, at=NOW + timedelta(minutes=10), actor=STAFF)
    # The oldest of the ten leaves the hour at NOW + 60 min: 50 minutes (and a second) from now.
    assert raised.value.extra["retry_after"] == 50 * 60 + 1
    acc.resend(invitation_id=uuid4(), expires_at=NOW, at=NOW + timedelta(minutes=60, seconds=1), actor=STAFF)


def test_revoke_disables_a_pending_account():
    acc = account()
    acc.revoke(at=NOW, actor=STAFF)
    assert acc.status == "disabled" and acc.disabled_at == NOW and acc.disabled_by == "s1"
    assert acc.allowed_actions == ["reenable", "reactivate"]
    assert event_names(acc)[-1] == "InviteRevoked"
    refused(lambda: active_account().revoke(at=NOW, actor=STAFF), ["disable", "password-reset"])


def test_disable_keeps_who_when_and_why_and_ends_sessions():
    acc = active_account()
    acc.request_password_reset(nonce="r1", expires_at=NOW, **RESET_TO, actor=STAFF)
    acc.disable(at=NOW, reason="left the company", actor=STAFF)
    assert acc.status == "disabled" and acc.access_epoch == 1
    assert (acc.disabled_at, acc.disabled_by, acc.disabled_reason) == (NOW, "s1", "left the company")
    assert acc.reset_nonce is None  # the pending reset link dies too
    assert event_names(acc)[-1] == "AccessDisabled"
    refused(lambda: account().disable(at=NOW, reason=None, actor=STAFF), ["resend", "revoke"])


def test_reenable_returns_to_active_or_to_pending_silently():
    acc = disabled_account(was_active=True)
    acc.reenable(actor=STAFF)
    assert acc.status == "active" and acc.disabled_at is None and acc.access_epoch == 1
    assert event_names(acc)[-1] == "AccessReenabled"
    never_active = disabled_account(was_active=False)
    never_active.reenable(actor=STAFF)
    assert never_active.status == "pending"
    refused(lambda: acc.reenable(actor=STAFF), ["disable", "password-reset"])


def test_reactivate_reenables_as_pending_with_a_fresh_invitation_in_one_call():
    acc, fresh = disabled_account(), uuid4()
    acc.reactivate(invitation_id=fresh, expires_at=NOW + timedelta(days=7), at=NOW, actor=STAFF)
    assert acc.status == "pending" and acc.invitation_id == fresh
    assert event_names(acc)[-2:] == ["AccessReenabled", "InviteResent"]
    refused(lambda: account().reactivate(invitation_id=uuid4(), expires_at=NOW, at=NOW, actor=STAFF),
            ["resend", "revoke"])


def test_reactivate_counts_against_the_resend_limit():
    acc = account()
    for _ in range(10):
        acc.revoke(at=NOW, actor=STAFF)
        acc.reactivate(invitation_id=uuid4(), expires_at=NOW, at=NOW, actor=STAFF)
    acc.revoke(at=NOW, actor=STAFF)
    with pytest.raises(TooManyResends):
        acc.reactivate(invitation_id=uuid4(), expires_at=NOW, at=NOW, actor=STAFF)
    assert acc.status == "disabled"


def test_password_reset_records_a_nonce_only_when_active():
    acc = active_account()
    acc.request_password_reset(nonce="r1", expires_at=NOW + timedelta(hours=1), **RESET_TO, actor=STAFF)
    assert (acc.reset_nonce, acc.access_epoch) == ("r1", 0)  # sessions end when the password is set
    assert event_names(acc)[-1] == "PasswordResetRequested"
    refused(lambda: account().request_password_reset(nonce="r", expires_at=NOW, **RESET_TO, actor=STAFF),
            ["resend", "revoke"])


def test_a_voided_invitation_cannot_be_claimed_or_voided_again():
    inv = invitation()
    inv.void(reason="superseded", at=NOW, actor=STAFF)
    assert not inv.is_open
    with pytest.raises(LinkInvalid):
        inv.claim(at=NOW, actor=STAFF)
    with pytest.raises(LinkInvalid):
        inv.void(reason="revoked", at=NOW, actor=STAFF)
    claimed = invitation()
    claimed.claim(at=NOW, actor=STAFF)
    with pytest.raises(LinkInvalid):
        claimed.void(reason="revoked", at=NOW, actor=STAFF)


def test_replaying_the_events_rebuilds_the_same_account():
    acc = disabled_account()
    acc.reactivate(invitation_id=uuid4(), expires_at=NOW, at=NOW, actor=STAFF)
    events = acc.collect_events()
    rebuilt = None
    for e in events:
        rebuilt = e.mutate(rebuilt)
    assert vars(rebuilt) == vars(acc)
