"""Invitation commands: invite a contact (a new account and its first invitation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from services.common import tokens
from services.invite_service.domain import ids
from services.invite_service.domain.errors import DuplicateEmail
from services.invite_service.domain.invitation import Invitation
from services.invite_service.domain.portal_account import PortalAccount
from services.invite_service.domain.workspace import Workspace


@dataclass(frozen=True)
class InviteCommand:
    email: str  # already validated and normalised at the edge
    name: str | None
    role: str
    company: str | None = None
    phone: str | None = None
    contact_id: str | None = None
    resources: tuple[dict[str, str], ...] = ()
    channels: tuple[str, ...] = ("email",)


@dataclass(frozen=True)
class InviteResult:
    account_id: UUID
    invitation_id: UUID
    expires_at: datetime
    position: int
    status: str = "pending"


def _now() -> datetime:
    return datetime.now(UTC)


class InvitationCommands:
    async def invite(self, slug: str, cmd: InviteCommand, actor: dict[str, Any], method: str = "manual") -> InviteResult:
        workspace = await self._workspace_for_invite(slug)
        account, invitation = _new_invite(workspace, slug, cmd, actor, method)
        try:
            position = await self._commit(account, invitation)
        except IntegrityError:  # lost a race with another invite of the same email
            raise DuplicateEmail() from None
        return InviteResult(account.id, invitation.id, invitation.expires_at, position)


def _new_invite(
    workspace: Workspace, slug: str, cmd: InviteCommand, actor: dict[str, Any], method: str
) -> tuple[PortalAccount, Invitation]:
    workspace.check_can_invite(cmd.role)
    # No look-up before saving: the derived account id makes the event store itself
    # refuse a second account for the email, also between two concurrent requests.
    invitation = Invitation(
        workspace=slug,
        account_id=ids.account_id(slug, cmd.email),
        email=cmd.email,
        name=cmd.name,
        nonce=tokens.new_nonce(),
        expires_at=_now() + timedelta(hours=workspace.settings["invite_ttl_hours"]),
        channels=list(cmd.channels),
        method=method,
        sender=workspace.sender,
        actor=actor,
    )
    account = PortalAccount(
        workspace=slug,
        email=cmd.email,
        name=cmd.name,
        role=cmd.role,
        company=cmd.company,
        phone=cmd.phone,
        contact_id=cmd.contact_id,
        resources=list(cmd.resources),
        invitation_id=invitation.id,
        actor=actor,
    )
    return account, invitation
