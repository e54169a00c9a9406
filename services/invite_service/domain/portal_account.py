"""PortalAccount: one per (workspace, normalised email), whatever its state.

`allowed_actions` is the state machine: every staff action's guard asks it, and the
account view's `actions` are read from it, so there is no second copy to drift.
Times that state depends on (disabled at, resent at) are passed in and recorded on the
event, so replaying the events rebuilds the same state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invite_service.domain import ids
from services.invite_service.domain.errors import InvalidState, LinkInvalid, LockedOut, TooManyResends, WrongCode

PENDING, ACTIVE, DISABLED = "pending", "active", "disabled"

# Invite emails one account may be sent per hour by resend or reactivate: staff must not
# be able to mail-bomb a client (revoke/reactivate in a loop counts too).
RESENDS_PER_HOUR = 10
RESEND_WINDOW = timedelta(hours=1)

# Wrong codes or passwords in a row before the code dies and sign-in is refused a while:
# five guesses at a 6-digit code is a 1 in 200,000 chance.
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
RECENT_SIGN_INS = 10  # kept on the aggregate for the account view

ACTIONS = {
    PENDING: ["resend", "revoke"],
    ACTIVE: ["disable", "password-reset"],
    DISABLED: ["reenable", "reactivate"],
}


class PortalAccount(Aggregate):
    @staticmethod
    def create_id(workspace: str, email: str) -> UUID:
        return ids.account_id(workspace, email)

    @event("AccountCreated")
    def __init__(
        self,
        workspace: str,
        email: str,
        name: str | None,
        role: str,
        company: str | None,
        phone: str | None,
        contact_id: str | None,
        resources: list[dict[str, str]],
        invitation_id: UUID,
        actor: dict[str, Any],
    ) -> None:
        self.workspace = workspace
        self.email = email
        self.name = name
        self.role = role
        self.company = company
        self.phone = phone
        self.contact_id = contact_id
        self.resources = resources
        self.invitation_id = invitation_id
        self.status = PENDING
        # Bumped whenever every existing session must end (disable, password reset).
        self.access_epoch = 0
        self.activated = False  # ever: where a re-enable returns to
        self.disabled_at: datetime | None = None
        self.disabled_by: str | None = None
        self.disabled_reason: str | None = None
        self.resent_at: list[datetime] = []  # invite emails of the last hour, for the resend limit
        self.reset_nonce: str | None = None
        self.reset_expires_at: datetime | None = None
        # Sign-in: only the latest magic link and code work; each is spent by its SignedIn.
        self.magic_nonce: str | None = None
        self.magic_expires_at: datetime | None = None
        self.code_nonce: str | None = None
        self.code_expires_at: datetime | None = None
        self.failures = 0  # wrong codes or passwords in a row
        self.locked_until: datetime | None = None
        self.last_sign_in_at: datetime | None = None
        self.sign_ins: list[dict[str, Any]] = []  # the latest RECENT_SIGN_INS, newest first

    @property
    def allowed_actions(self) -> list[str]:
        return list(ACTIONS[self.status])

    def check_allowed(self, action: str) -> None:
        if action not in ACTIONS[self.status]:
            raise InvalidState(
                f"The account is {self.status}: {action} is not allowed; allowed now: "
                f"{', '.join(self.allowed_actions)}.",
                allowed=self.allowed_actions,
            )

    def _check_pending(self) -> None:
        if self.status != PENDING:
            raise InvalidState(f"The account is {self.status}, not pending.", allowed=self.allowed_actions)

    def activate(self, invitation_id: UUID, actor: dict[str, Any], workspace_name: str | None = None) -> None:
        self._check_pending()
        # The address, the name and the workspace's name ride along for the team's
        # "invitation accepted" notice (the notifier has no other record of them).
        self._activated(invitation_id=invitation_id, email=self.email, name=self.name, actor=actor,
                        workspace_name=workspace_name)

    @event("AccountActivated")
    def _activated(
        self, invitation_id: UUID, actor: dict[str, Any], email: str | None = None, name: str | None = None,
        workspace_name: str | None = None,
    ) -> None:
        self.status = ACTIVE
        self.activated = True

    def check_resend_allowed(self, at: datetime) -> None:
        """TooManyResends once RESENDS_PER_HOUR invite emails went out in the last hour."""
        recent = [t for t in self.resent_at if t > at - RESEND_WINDOW]
        if len(recent) >= RESENDS_PER_HOUR:
            retry_after = max(1, int((min(recent) + RESEND_WINDOW - at).total_seconds()) + 1)
            raise TooManyResends(retry_after=retry_after)

    def resend(self, invitation_id: UUID, expires_at: datetime, at: datetime, actor: dict[str, Any]) -> None:
        """Point at a fresh invitation: the previous link stops opening anything at once."""
        self.check_allowed("resend")
        self.check_resend_allowed(at)
        self._invite_resent(invitation_id=invitation_id, expires_at=expires_at, at=at, actor=actor)

    @event("InviteResent")
    def _invite_resent(self, invitation_id: UUID, expires_at: datetime, at: datetime, actor: dict[str, Any]) -> None:
        self.invitation_id = invitation_id
        self.resent_at = [t for t in self.resent_at if t > at - RESEND_WINDOW] + [at]

    @event("InviteRevoked")
    def revoke(self, at: datetime, actor: dict[str, Any]) -> None:
        """Cancel the pending invite and disable the account."""
        self.check_allowed("revoke")
        self._mark_disabled(at, actor, None)

    @event("AccessDisabled")
    def disable(self, at: datetime, reason: str | None, actor: dict[str, Any]) -> None:
        """No more sign-ins; every session fails on its next request (the epoch moves on)."""
        self.check_allowed("disable")
        self._mark_disabled(at, actor, reason)
        self.access_epoch += 1

    def _mark_disabled(self, at: datetime, actor: dict[str, Any], reason: str | None) -> None:
        self.status = DISABLED
        self.disabled_at = at
        self.disabled_by = actor.get("id") or actor.get("kind")
        self.disabled_reason = reason
        self.reset_nonce = self.reset_expires_at = None  # a pending reset link dies too

    def reenable(self, actor: dict[str, Any]) -> None:
        """Back to where the account was before, silently: active if it ever was (its password
        keeps working), else pending (staff resend to send a live link)."""
        self.check_allowed("reenable")
        self._access_reenabled(status=ACTIVE if self.activated else PENDING, actor=actor)

    def reactivate(self, invitation_id: UUID, expires_at: datetime, at: datetime, actor: dict[str, Any]) -> None:
        """Re-enable as pending, with a fresh invitation: the client claims it to be active again.
        Counts against the resend limit, like any invite email staff cause."""
        self.check_allowed("reactivate")
        self.check_resend_allowed(at)
        self._access_reenabled(status=PENDING, actor=actor)
        self._invite_resent(invitation_id=invitation_id, expires_at=expires_at, at=at, actor=actor)

    @event("AccessReenabled")
    def _access_reenabled(self, status: str, actor: dict[str, Any]) -> None:
        self.status = status
        self.disabled_at = self.disabled_by = self.disabled_reason = None

    @event("PasswordResetRequested")
    def request_password_reset(
        self,
        nonce: str,
        expires_at: datetime,
        email: str,
        name: str | None,
        sender: dict[str, Any],
        actor: dict[str, Any],
    ) -> None:
        """A reset link's nonce (the link is derived from it), and whom and as whom to send it,
        as InviteSent has them. Sessions end only once the new password is set, so a mistaken
        request locks nobody out."""
        self.check_allowed("password-reset")
        self.reset_nonce = nonce
        self.reset_expires_at = expires_at

    # Client sign-in. Nonces are not secrets: links and codes are HMACs over them with a key
    # only Porchlight holds (services/common/tokens.py). Guards open each method; times come in.

    def _check_active(self) -> None:
        if self.status != ACTIVE:
            raise InvalidState(f"The account is {self.status}, not active.", allowed=self.allowed_actions)

    def check_not_locked(self, at: datetime) -> None:
        if self.locked_until is not None and at < self.locked_until:
            raise LockedOut(retry_after=max(1, int((self.locked_until - at).total_seconds()) + 1))

    def request_magic_link(
        self, nonce: str, expires_at: datetime, email: str, sender: dict[str, Any], actor: dict[str, Any]
    ) -> None:
        """A fresh sign-in link; the previous one stops working."""
        self._check_active()
        self._magic_link_requested(nonce=nonce, expires_at=expires_at, email=email, name=self.name,
                                   sender=sender, actor=actor)

    @event("MagicLinkRequested")
    def _magic_link_requested(
        self, nonce: str, expires_at: datetime, email: str, name: str | None, sender: dict[str, Any],
        actor: dict[str, Any],
    ) -> None:
        self.magic_nonce = nonce
        self.magic_expires_at = expires_at

    def check_magic_link(self, nonce_matches: bool, at: datetime) -> None:
        """LinkInvalid unless the link is this account's latest, unspent and unexpired."""
        if (self.status != ACTIVE or not nonce_matches or self.magic_nonce is None
                or self.magic_expires_at is None or at >= self.magic_expires_at):
            raise LinkInvalid()

    def issue_code(
        self, nonce: str, expires_at: datetime, at: datetime, email: str, channels: list[str],
        sender: dict[str, Any], actor: dict[str, Any],
    ) -> None:
        """A fresh one-time code; only the latest works. Not while locked out."""
        self._check_active()
        self.check_not_locked(at)
        self._code_issued(nonce=nonce, expires_at=expires_at, email=email, name=self.name, phone=self.phone,
                          channels=channels, sender=sender, actor=actor)

    @event("SignInCodeIssued")
    def _code_issued(
        self, nonce: str, expires_at: datetime, email: str, name: str | None, phone: str | None,
        channels: list[str], sender: dict[str, Any], actor: dict[str, Any],
    ) -> None:
        self.code_nonce = nonce
        self.code_expires_at = expires_at

    def live_code_nonce(self, at: datetime) -> str | None:
        """The nonce of the code that works now, if any."""
        if self.status != ACTIVE or self.code_nonce is None or self.code_expires_at is None:
            return None
        return self.code_nonce if at < self.code_expires_at else None

    def fail_verification(
        self, method: str, at: datetime, ip: str | None, user_agent: str | None, sender: dict[str, Any],
        actor: dict[str, Any],
    ) -> bool:
        """Record a wrong code or password; the MAX_FAILURES-th in a row kills the code and
        locks sign-in for LOCKOUT. True when this one locked the account."""
        failures = self.failures + 1
        self._verification_failed(method=method, at=at, failures=failures, ip=ip, user_agent=user_agent, actor=actor)
        if failures < MAX_FAILURES:
            return False
        self._locked_out(at=at, until=at + LOCKOUT, method=method, email=self.email, name=self.name, ip=ip,
                         sender=sender, actor=actor)
        return True

    @event("VerificationFailed")
    def _verification_failed(
        self, method: str, at: datetime, failures: int, ip: str | None, user_agent: str | None,
        actor: dict[str, Any],
    ) -> None:
        self.failures = failures

    @event("VerificationLockedOut")
    def _locked_out(
        self, at: datetime, until: datetime, method: str, email: str, name: str | None, ip: str | None,
        sender: dict[str, Any], actor: dict[str, Any],
    ) -> None:
        self.locked_until = until
        self.failures = 0
        self.code_nonce = self.code_expires_at = None  # the code dies with the lockout

    def sign_in(self, method: str, at: datetime, ip: str | None, user_agent: str | None, actor: dict[str, Any]) -> None:
        """A successful sign-in (a claim counts as the first). Spends what it used."""
        self._check_active()
        if method != "claim":
            self.check_not_locked(at)
        self._signed_in(method=method, at=at, ip=ip, user_agent=user_agent, actor=actor)

    @event("SignedIn")
    def _signed_in(self, method: str, at: datetime, ip: str | None, user_agent: str | None, actor: dict[str, Any]) -> None:
        if method == "magic_link":
            self.magic_nonce = self.magic_expires_at = None
        elif method == "code":
            self.code_nonce = self.code_expires_at = None
        self.failures = 0
        self.last_sign_in_at = at
        self.sign_ins = [{"method": method, "at": at, "ip": ip, "user_agent": user_agent}, *self.sign_ins][
            :RECENT_SIGN_INS
        ]

    def check_reset_link(self, nonce_matches: bool, at: datetime) -> None:
        if (self.status != ACTIVE or not nonce_matches or self.reset_nonce is None
                or self.reset_expires_at is None or at >= self.reset_expires_at):
            raise LinkInvalid()

    def set_password(self, at: datetime, reason: str, actor: dict[str, Any]) -> None:
        """Record that a password was set (the hash is stored elsewhere). A reset spends its
        link and ends every other session (the epoch moves on)."""
        self._check_active()
        self._password_set(at=at, reason=reason, actor=actor)

    @event("PasswordSet")
    def _password_set(self, at: datetime, reason: str, actor: dict[str, Any]) -> None:
        if reason == "reset":
            self.reset_nonce = self.reset_expires_at = None
            self.access_epoch += 1
            self.locked_until = None
            self.failures = 0
