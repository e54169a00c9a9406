"""Lifecycle commands: what staff do to an account once it exists (resend, revoke,
disable, re-enable, reactivate, password reset).

Each loads the account and its current invitation, asks the aggregate (whose guard
decides whether the action is allowed now), and saves everything it changed in one
transaction. Two staff acting on one account at once both load the same version; the
event store takes the first and refuses the second (IntegrityError), which reloads and
asks the aggregate again: it then succeeds on the new state or is refused with
`invalid_state`. No update is lost and none is applied twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.common import tokens
from services.invite_service.domain.errors import AccountNotFound, InvalidState
from services.invite_service.domain.invitation import Invitation, inviter_of
from services.invite_service.domain.portal_account import PortalAccount

PASSWORD_RESET_TTL = timedelta(hours=1)
# Conflicts only repeat while others keep writing to the same account; past this, say so.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ActionResult:
    account: PortalAccount
    invitation: Invitation  # the account's current invitation, after the action
    position: int


@dataclass
class _Change:
    """What one attempt changed: the aggregates to save together, and the current invitation."""

    aggregates: list[Any]
    invitation: Invitation


Step = Callable[[str, PortalAccount, Invitation, dict[str, Any], str | None], Coroutine[Any, Any, _Change]]


def _now() -> datetime:
    return datetime.now(UTC)


class LifecycleCommands:
    async def act_on_account(
        self, slug: str, account_id: UUID, action: str, actor: dict[str, Any], reason: str | None = None
    ) -> ActionResult:
        step: Step = {
            "resend": self._resend,
            "revoke": self._revoke,
            "disable": self._disable,
            "reenable": self._reenable,
            "reactivate": self._reactivate,
            "password-reset": self._password_reset,
        }[action]
        for _ in range(MAX_ATTEMPTS):
            account, invitation = await asyncio.to_thread(self.load_account, slug, account_id)
            change = await step(slug, account, invitation, actor, reason)
            try:
                position = await self._commit(*change.aggregates)
            except IntegrityError:  # another command on this account saved first: reload, re-check
                continue
            return ActionResult(account, change.invitation, position)
        raise InvalidState("The account is being changed by someone else right now; try again.",
                           allowed=account.allowed_actions)

    def load_account(self, slug: str, account_id: UUID) -> tuple[PortalAccount, Invitation]:
        """The workspace's account and its current invitation; AccountNotFound for an unknown id,
        another workspace's account, or an id of something else (the same answer for each)."""
        try:
            account = self.repository.get(account_id)
        except AggregateNotFoundError:
            raise AccountNotFound() from None
        if not isinstance(account, PortalAccount) or account.workspace != slug:
            raise AccountNotFound()
        return account, self.repository.get(account.invitation_id)

    async def _fresh_invitation(
        self, slug: str, account: PortalAccount, previous: Invitation, method: str, actor: dict[str, Any]
    ) -> Invitation:
        """A new invitation to the address the previous one went to: its InviteSent is what the
        notifier sends, exactly as for a first invite."""
        workspace = await self._workspace_for_invite(slug)
        workspace.check_can_send()
        return Invitation(
            workspace=slug,
            account_id=account.id,
            email=previous.email,
            name=account.name,
            nonce=tokens.new_nonce(),
            expires_at=_now() + timedelta(hours=workspace.settings["invite_ttl_hours"]),
            channels=list(previous.channels),
            method=method,
            sender=workspace.sender,
            actor=actor,
            phone=account.phone,
            **inviter_of(actor),
        )

    async def _resend(
        self, slug: str, account: PortalAccount, invitation: Invitation, actor: dict[str, Any], reason: str | None
    ) -> _Change:
        at = _now()
        account.check_allowed("resend")  # before building anything: the state, then the limit
        account.check_resend_allowed(at)
        fresh = await self._fresh_invitation(slug, account, invitation, "resend", actor)
        account.resend(invitation_id=fresh.id, expires_at=fresh.expires_at, at=at, actor=actor)
        changed = [account, fresh]
        if invitation.is_open:
            invitation.void(reason="superseded", at=at, actor=actor)
            changed.append(invitation)
        return _Change(changed, fresh)

    async def _revoke(
        self, slug: str, account: PortalAccount, invitation: Invitation, actor: dict[str, Any], reason: str | None
    ) -> _Change:
        at = _now()
        account.revoke(at=at, actor=actor)
        changed = [account]
        if invitation.is_open:
            invitation.void(reason="revoked", at=at, actor=actor)
            changed.append(invitation)
        return _Change(changed, invitation)

    async def _disable(
        self, slug: str, account: PortalAccount, invitation: Invitation, actor: dict[str, Any], reason: str | None
    ) -> _Change:
        account.disable(at=_now(), reason=reason, actor=actor)
        return _Change([account], invitation)

    async def _reenable(
        self, slug: str, account: PortalAccount, invitation: Invitation, actor: dict[str, Any], reason: str | None
    ) -> _Change:
        account.reenable(actor=actor)
        return _Change([account], invitation)

    async def _reactivate(
        self, slug: str, account: PortalAccount, invitation: Invitation, actor: dict[str, Any], reason: str | None
    ) -> _Change:
        # Re-enabled and invited in one save: both or neither.
        at = _now()
        account.check_allowed("reactivate")
        account.check_resend_allowed(at)
        fresh = await self._fresh_invitation(slug, account, invitation, "reactivate", actor)
        account.reactivate(invitation_id=fresh.id, expires_at=fresh.expires_at, at=at, actor=actor)
        changed = [account, fresh]
        if invitation.is_open:  # a re-enabled pending account's last invitation, say
            invitation.void(reason="superseded", at=at, actor=actor)
            changed.append(invitation)
        return _Change(changed, fresh)

    async def _password_reset(
        self, slug: str, account: PortalAccount, invitation: Invitation, actor: dict[str, Any], reason: str | None
    ) -> _Change:
        account.check_allowed("password-reset")
        workspace = await self._workspace_for_invite(slug)
        account.request_password_reset(
            nonce=tokens.new_nonce(),
            expires_at=_now() + PASSWORD_RESET_TTL,
            email=invitation.email,
            name=account.name,
            sender=workspace.sender,
            actor=actor,
        )
        return _Change([account], invitation)
