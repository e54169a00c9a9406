"""The service layer: every command loads aggregates, calls them, and saves them together.

This is the only place that reads or writes the event store. Commands return the
notification-log position of what they stored, so callers (and tests) can wait for the
read side to catch up with their own write.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from services.common import tokens
from services.invite_service.domain import ids
from services.invite_service.domain.errors import DuplicateEmail, LinkInvalid, WorkspaceNotFound
from services.invite_service.domain.invitation import Invitation
from services.invite_service.domain.portal_account import PortalAccount
from services.invite_service.domain.workspace import Workspace
from services.invite_service.group_commit import AsyncGroupCommitter, GroupCommitter


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


@dataclass(frozen=True)
class ClaimResult:
    account_id: UUID
    status: str
    access_epoch: int
    position: int


WORKSPACE_CACHE_SECONDS = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


class PortalAccess(Application):
    name = "porchlight"  # the event store table is porchlight_events

    def __init__(
        self, env: dict[str, str] | None = None, *, secret_key: bytes | None = None, commit_batch_max: int = 200
    ) -> None:
        super().__init__(env=env)
        # None for processes that only read the log (the relay): they can never mint or check a link.
        self._secret_key = secret_key
        self._committer = GroupCommitter(self._save_events, max_batch=commit_batch_max)
        self._async_committer = AsyncGroupCommitter(self._save_events, max_batch=commit_batch_max)
        self._workspace_cache: dict[str, tuple[float, Workspace]] = {}

    def _save_events(self, events):
        # The event store's own `put`, rather than `save(*events)`: save() checks each object
        # against runtime Protocols, which cost more CPU per invite than everything else here
        # together (Python 3.11), and we use none of what it adds (snapshots, cache, notify hooks).
        return self.events.put(events)

    def _commit(self, *aggregates) -> int:
        events = [e for a in aggregates for e in a.collect_events()]
        return self._committer.commit(events)

    # Workspaces

    def configure_workspace(self, slug: str, settings: dict[str, Any], actor: dict[str, Any]) -> tuple[Workspace, bool]:
        """Create the workspace or apply the settings that changed; returns (workspace, created)."""
        try:
            workspace = self.repository.get(ids.workspace_id(slug))
        except AggregateNotFoundError:
            workspace = Workspace(slug=slug, settings=settings, actor=actor)
            try:
                self._commit(workspace)
            except IntegrityError:  # created concurrently: apply ours as a change instead
                return self.configure_workspace(slug, settings, actor)
            return workspace, True
        changes = workspace.changes_from(settings)
        if changes:
            workspace.change_settings(changes=changes, actor=actor)
            self._commit(workspace)
            self._workspace_cache.pop(slug, None)
        return workspace, False

    def get_workspace(self, slug: str) -> Workspace:
        try:
            return self.repository.get(ids.workspace_id(slug))
        except AggregateNotFoundError:
            raise WorkspaceNotFound() from None

    def _workspace_for_invite(self, slug: str) -> Workspace:
        """The workspace, re-read at most once a second: every invite checks its gate, and
        a settings change reaching other API replicas a second later is an acceptable lag
        for the price of one fewer event-store read per invite."""
        workspace = self._cached_workspace(slug)
        if workspace is None:
            workspace = self.get_workspace(slug)
            self._workspace_cache[slug] = (time.monotonic(), workspace)
        return workspace

    def _cached_workspace(self, slug: str) -> Workspace | None:
        cached = self._workspace_cache.get(slug)
        if cached is None or time.monotonic() - cached[0] > WORKSPACE_CACHE_SECONDS:
            return None
        return cached[1]

    # Invitations

    def invite(self, slug: str, cmd: InviteCommand, actor: dict[str, Any], method: str = "manual") -> InviteResult:
        account, invitation = self._new_invite(self._workspace_for_invite(slug), slug, cmd, actor, method)
        try:
            position = self._commit(account, invitation)
        except IntegrityError:  # lost a race with another invite of the same email
            raise DuplicateEmail() from None
        return InviteResult(account.id, invitation.id, invitation.expires_at, position)

    async def invite_async(self, slug: str, cmd: InviteCommand, actor: dict[str, Any], method: str = "manual") -> InviteResult:
        """`invite` for the API's event loop: the command waits there rather than in a
        thread, and the batch it joins pays the one thread hop to the event store."""
        workspace = self._cached_workspace(slug) or await asyncio.to_thread(self._workspace_for_invite, slug)
        account, invitation = self._new_invite(workspace, slug, cmd, actor, method)
        try:
            position = await self._async_committer.commit([*account.collect_events(), *invitation.collect_events()])
        except IntegrityError:
            raise DuplicateEmail() from None
        return InviteResult(account.id, invitation.id, invitation.expires_at, position)

    def _new_invite(
        self, workspace: Workspace, slug: str, cmd: InviteCommand, actor: dict[str, Any], method: str
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

    @property
    def secret_key(self) -> bytes:
        if not self._secret_key:
            raise RuntimeError("this Application was built without PORCHLIGHT_SECRET_KEY")
        return self._secret_key

    def claim_link(self, base_url: str, invitation: Invitation) -> str:
        token = tokens.make_token(self.secret_key, tokens.CLAIM, invitation.id, invitation.nonce)
        return tokens.claim_link(base_url, invitation.workspace, token)

    def check_claim(self, slug: str, token: str) -> tuple[Invitation, PortalAccount]:
        """The invitation and account a claim token opens, or LinkInvalid; changes nothing."""
        parsed = tokens.parse_token(token)
        if parsed is None:
            raise LinkInvalid()
        invitation_id, mac = parsed
        try:
            invitation: Invitation = self.repository.get(invitation_id)
        except AggregateNotFoundError:
            raise LinkInvalid() from None
        valid_mac = tokens.verify_token(self.secret_key, tokens.CLAIM, invitation_id, invitation.nonce, mac)
        if not isinstance(invitation, Invitation) or not valid_mac or invitation.workspace != slug:
            raise LinkInvalid()
        invitation.check_claimable(_now())
        account: PortalAccount = self.repository.get(invitation.account_id)
        if account.invitation_id != invitation.id or account.status != "pending":
            raise LinkInvalid()  # superseded by a resend, or the account moved on
        return invitation, account

    def claim(self, slug: str, token: str) -> ClaimResult:
        invitation, account = self.check_claim(slug, token)
        actor = {"kind": "client", "id": str(account.id), "reason": None}
        invitation.claim(at=_now(), actor=actor)
        account.activate(invitation_id=invitation.id, actor=actor)
        try:
            position = self._commit(invitation, account)
        except IntegrityError:  # a concurrent claim of the same link won
            raise LinkInvalid() from None
        return ClaimResult(account.id, account.status, account.access_epoch, position)

    def get_account(self, account_id: UUID) -> PortalAccount:
        return self.repository.get(account_id)
