"""Claim commands: check a link, and claim it into an active account with a session.

A link names an aggregate id and carries a MAC over (purpose, id, nonce). Every token that
does not open a claimable invitation, whatever it names (garbage, an unknown id, the
derivable id of an account or a workspace, another workspace's invitation), fails the
same way: `LinkInvalid`, after the same work (one read of the id's events, one MAC), so
neither the answer nor its timing tells whether an account or a workspace exists.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import project_aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from services.common import tokens
from services.invite_service.domain import ids
from services.invite_service.domain.errors import LinkInvalid, WeakPassword
from services.invite_service.domain.invitation import Invitation
from services.invite_service.domain.portal_account import PortalAccount
from services.invite_service.signin import credentials, passwords

# Stand-ins that keep the work the same when a token opens nothing: an id no aggregate
# has (the namespace has no such path) and a nonce no invitation has (real ones are 22 characters).
_NO_AGGREGATE = uuid5(ids.NAMESPACE, "/no-aggregate")
_NO_NONCE = "-"
_INVITATION_CREATED = get_topic(Invitation.InviteSent)


@dataclass(frozen=True)
class ClaimResult:
    account_id: UUID
    status: str
    access_epoch: int
    position: int
    session: str = field(repr=False)  # the cookie value; stored nowhere, never logged
    session_id: UUID | None = None
    redirect_to: str | None = field(default=None, repr=False)  # portal_url with a one-time hand-off code


def _now() -> datetime:
    return datetime.now(UTC)


class ClaimCommands:
    def claim_link(self, base_url: str, invitation: Invitation) -> str:
        token = tokens.make_token(self.secret_key, tokens.CLAIM, invitation.id, invitation.nonce)
        return tokens.claim_link(base_url, invitation.workspace, token)

    def check_claim(self, slug: str, token: str) -> tuple[Invitation, PortalAccount]:
        """The invitation and account a claim token opens, or LinkInvalid; changes nothing."""
        aggregate_id, mac = tokens.parse_token(token) or (_NO_AGGREGATE, b"")
        invitation = self._invitation_or_none(aggregate_id)
        nonce = invitation.nonce if invitation is not None else _NO_NONCE
        valid_mac = tokens.verify_token(self.secret_key, tokens.CLAIM, aggregate_id, nonce, mac)
        if invitation is None or not valid_mac or invitation.workspace != slug:
            raise LinkInvalid()
        invitation.check_claimable(_now())
        account: PortalAccount = self.repository.get(invitation.account_id)
        if account.invitation_id != invitation.id or account.status != "pending":
            raise LinkInvalid()  # superseded by a resend, or the account moved on
        return invitation, account

    def _invitation_or_none(self, aggregate_id: UUID) -> Invitation | None:
        # The type is checked on the stored events, before anything is built from them: an
        # account's or a workspace's events are read like an unknown id's, and never
        # mistaken for an invitation.
        stored = self.recorder.select_events(aggregate_id)
        if not stored or stored[0].topic != _INVITATION_CREATED:
            return None
        return project_aggregate(None, map(self.mapper.to_domain_event, stored))

    async def claim(
        self, slug: str, token: str, password: str | None = None, client: Any = None
    ) -> ClaimResult:
        """Spend the link, activate the account, set its password (in a password workspace)
        and start a session, all in one transaction: the client has a session exactly when
        the claim stands. Claiming counts as the first sign-in (SignedIn, method `claim`);
        in a code workspace this is how the single-use link signs the client in."""
        invitation, account = await asyncio.to_thread(self.check_claim, slug, token)
        workspace = await self._workspace_for_invite(slug)
        extra_rows = []
        password_hash = None
        if workspace.settings["sign_in_method"] == "password":
            if reason := passwords.problem_with(password or "", account.email, account.name):
                raise WeakPassword(reason)
            password_hash = await asyncio.to_thread(passwords.hash_password, password)
        at = _now()
        actor = {"kind": "client", "id": str(account.id), "reason": None}
        invitation.claim(at=at, actor=actor)
        account.activate(invitation_id=invitation.id, actor=actor, workspace_name=workspace.sender["workspace_name"])
        if password_hash is not None:
            account.set_password(at=at, reason="claim", actor=actor)
            extra_rows.append(credentials.store(account.id, password_hash))
        account.sign_in(method="claim", at=at, ip=getattr(client, "ip", None),
                        user_agent=getattr(client, "user_agent", None), actor=actor)
        session, redirect_to, rows = await self.start_session(slug, account, "claim")
        try:
            position = await self._commit(invitation, account, side_rows=[*extra_rows, *rows])
        except IntegrityError:  # a concurrent claim of the same link won
            raise LinkInvalid() from None
        return ClaimResult(account.id, account.status, account.access_epoch, position, session.cookie,
                           session.session_id, redirect_to)
