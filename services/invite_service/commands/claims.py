"""Claim commands: check a link, and claim it into an active account with a session."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.common import tokens
from services.invite_service import sessions
from services.invite_service.domain.errors import LinkInvalid
from services.invite_service.domain.invitation import Invitation
from services.invite_service.domain.portal_account import PortalAccount


@dataclass(frozen=True)
class ClaimResult:
    account_id: UUID
    status: str
    access_epoch: int
    position: int
    session: str = field(repr=False)  # the cookie value; stored nowhere, never logged


def _now() -> datetime:
    return datetime.now(UTC)


class ClaimCommands:
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

    async def claim(self, slug: str, token: str) -> ClaimResult:
        """Spend the link, activate the account and start a session, all in one transaction:
        the client has a session exactly when the claim stands."""
        invitation, account = await asyncio.to_thread(self.check_claim, slug, token)
        actor = {"kind": "client", "id": str(account.id), "reason": None}
        invitation.claim(at=_now(), actor=actor)
        account.activate(invitation_id=invitation.id, actor=actor)
        cookie, session_row = sessions.new(slug, account.id, account.access_epoch, method="claim")
        try:
            position = await self._commit(invitation, account, side_rows=[session_row])
        except IntegrityError:  # a concurrent claim of the same link won
            raise LinkInvalid() from None
        return ClaimResult(account.id, account.status, account.access_epoch, position, cookie)
