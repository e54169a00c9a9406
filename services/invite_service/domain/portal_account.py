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
from services.invite_service.domain.errors import InvalidState, TooManyResends

PENDING, ACTIVE, DISABLED = "pending", "active", "disabled"

# Invite emails one account may be sent per hour by resend or reactivate: staff must not
# be able to mail-bomb a client (revoke/reactivate in a loop counts too).
RESENDS_PER_HOUR = 10
RESEND_WINDOW = timedelta(hours=1)

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

    def activate(self, invitation_id: UUID, actor: dict[str, Any]) -> None:
        self._check_pending()
        # The address and name ride along for the team's "invitation accepted" notice.
        self._activated(invitation_id=invitation_id, email=self.email, name=self.name, actor=actor)

    @event("AccountActivated")
    def _activated(
        self, invitation_id: UUID, actor: dict[str, Any], email: str | None = None, name: str | None = None
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
