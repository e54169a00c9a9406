"""Sign-in rules without I/O: password rules, and the account's sign-in state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.invite_service.domain.errors import LinkInvalid, LockedOut
from services.invite_service.domain.portal_account import LOCKOUT, MAX_FAILURES, PortalAccount
from services.invite_service.signin import passwords

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
CLIENT = {"kind": "client", "id": "c", "reason": None}
SENDER = {"workspace_name": "W", "sender_name": "W"}


@pytest.mark.parametrize(("password", "refused"), [
    ("eleven char", True),
    ("ana.lima@example.com is me", True),
    ("ANALIMA-forever-2026", True),
    ("lima is my surname 9", True),
    ("Password1234", True),
    ("correct horse battery staple", True),
    ("violet tangerine harbour 42", False),
    ("日本語のパスワードです十二", False),  # any characters, no composition rules
])
def test_password_rules(password, refused):
    assert (passwords.problem_with(password, "ana.lima@example.com", "Ana Lima") is not None) == refused


def test_hashes_are_argon2id_and_verify_costs_the_same_without_a_hash():
    hashed = passwords.hash_password("violet tangerine harbour 42")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=4,p=1$")
    assert passwords.verify(hashed, "violet tangerine harbour 42")
    assert not passwords.verify(hashed, "violet tangerine harbour 43")
    assert not passwords.verify(None, "no account has this password")  # the dummy never opens anything


def _active() -> PortalAccount:
    account = PortalAccount(workspace="w", email="ana@example.com", name="Ana", role="customer", company=None,
                            phone=None, contact_id=None, resources=[], invitation_id=uuid4(), actor=CLIENT)
    account.activate(invitation_id=account.invitation_id, actor=CLIENT)
    return account


def test_only_the_latest_magic_link_and_only_until_it_expires():
    account = _active()
    account.request_magic_link(nonce="a", expires_at=NOW + timedelta(minutes=15), email=account.email,
                               sender=SENDER, actor=CLIENT)
    account.check_magic_link(True, NOW)
    with pytest.raises(LinkInvalid):
        account.check_magic_link(True, NOW + timedelta(minutes=15))
    account.sign_in(method="magic_link", at=NOW, ip=None, user_agent=None, actor=CLIENT)
    with pytest.raises(LinkInvalid):  # spent
        account.check_magic_link(True, NOW)


def test_the_fifth_failure_locks_kills_the_code_and_a_sign_in_resets_the_count():
    account = _active()
    account.issue_code(nonce="c", expires_at=NOW + timedelta(minutes=10), at=NOW, email=account.email,
                       channels=["email"], sender=SENDER, actor=CLIENT)
    locked = [account.fail_verification(method="code", at=NOW, ip=None, user_agent=None, sender=SENDER, actor=CLIENT)
              for _ in range(MAX_FAILURES)]
    assert locked == [False] * (MAX_FAILURES - 1) + [True]
    assert account.live_code_nonce(NOW) is None and account.locked_until == NOW + LOCKOUT
    with pytest.raises(LockedOut):
        account.issue_code(nonce="d", expires_at=NOW + timedelta(minutes=10), at=NOW, email=account.email,
                           channels=["email"], sender=SENDER, actor=CLIENT)
    later = NOW + LOCKOUT
    account.issue_code(nonce="e", expires_at=later + timedelta(minutes=10), at=later, email=account.email,
                       channels=["email"], sender=SENDER, actor=CLIENT)
    assert account.live_code_nonce(later) == "e"
    account.sign_in(method="code", at=later, ip="203.0.113.1", user_agent="UA", actor=CLIENT)
    assert account.failures == 0 and account.last_sign_in_at == later and account.sign_ins[0]["method"] == "code"


def test_a_reset_password_moves_the_access_epoch_on():
    account = _active()
    epoch = account.access_epoch
    account.set_password(at=NOW, reason="claim", actor=CLIENT)
    assert account.access_epoch == epoch
    account.set_password(at=NOW, reason="reset", actor=CLIENT)
    assert account.access_epoch == epoch + 1


@pytest.mark.parametrize(("brand", "text"), [("#0B7A75", "#ffffff"), ("#FFE066", "#111111"), ("#1F6FEB", "#ffffff")])
def test_button_text_keeps_its_contrast_on_any_brand_colour(brand, text):
    from services.invite_service.api.portal.forms import text_on

    assert text_on(brand) == text
