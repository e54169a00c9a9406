"""Sign-in commands: magic links, one-time codes, passwords, "forgot password", and the
session (and hand-off code) every successful sign-in starts.

Requests that send something ("email me a link", a code, "forgot password") never say
whether the address has an account: the API answers 202 before it calls them, and they
do nothing, silently, when there is no account that could sign in. Checks that answer
(a code, a password) do the same work whether or not the account exists: a code is
derived and compared against a stand-in nonce, a password verified against a dummy hash.
Every failure is recorded (VerificationFailed); the fifth in a row kills the code and
locks sign-in for a while (VerificationLockedOut), which the team is told about.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from email_validator import EmailNotValidError
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from services.common import tokens
from services.invite_service import sessions
from services.invite_service.contacts import email_identity
from services.invite_service.domain import ids
from services.invite_service.domain.errors import LinkInvalid, LockedOut, WeakPassword, WrongCode, WrongPassword
from services.invite_service.domain.portal_account import ACTIVE, PortalAccount
from services.invite_service.event_store import SideRow
from services.invite_service.signin import credentials, handoff, passwords

CODE_TTL = timedelta(minutes=10)
RESET_TTL = timedelta(hours=1)
_NO_NONCE = "-"  # no real nonce is this short: compared against when there is nothing to compare
_ACCOUNT_CREATED = get_topic(PortalAccount.AccountCreated)
MAX_ATTEMPTS = 5  # a concurrent write to the same account: reload and try again, this often
Defer = Callable[[Coroutine[Any, Any, None]], None]  # runs work after the answer is sent


@dataclass(frozen=True)
class Client:
    """Who is signing in, as the HTTP edge saw them: recorded on SignedIn and VerificationFailed."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SignInResult:
    account_id: UUID
    status: str
    position: int
    session_id: UUID
    session: str = field(repr=False)  # the session cookie value; stored nowhere, never logged
    redirect_to: str | None = field(default=None, repr=False)  # portal_url with a one-time code


def _now() -> datetime:
    return datetime.now(UTC)


def _actor(account_id: UUID) -> dict[str, Any]:
    return {"kind": "client", "id": str(account_id), "reason": None}


class SignInCommands:
    # Set by the API's composition root from its settings.
    allow_http_portal_url = False
    public_https = False  # the public URL is https: cookies are Secure
    session_absolute_lifetime = sessions.ABSOLUTE_LIFETIME

    # --- what starts a session, whatever the method

    async def start_session(self, slug: str, account: PortalAccount, method: str) -> tuple[sessions.NewSession, str | None, list[SideRow]]:
        """A session for `account`, and, when the workspace has a portal_url, the one-time
        code that hands the client over to it; the rows to commit with the sign-in's events."""
        session = sessions.new(slug, account.id, account.access_epoch, method, self.session_absolute_lifetime)
        rows = [session.row]
        workspace = await self._workspace_for_invite(slug)  # cached a second: one fewer read per sign-in
        target = handoff.usable_portal_url(workspace.settings.get("portal_url"), self.allow_http_portal_url)
        redirect_to = None
        if target:
            code, row = handoff.new(slug, session.session_id)
            rows.append(row)
            redirect_to = handoff.redirect_url(target, code)
        return session, redirect_to, rows

    async def _signed_in(self, slug: str, account: PortalAccount, method: str, client: Client,
                         others: tuple[Any, ...] = (), extra_rows: tuple[SideRow, ...] = ()) -> SignInResult:
        account.sign_in(method=method, at=_now(), ip=client.ip, user_agent=client.user_agent, actor=_actor(account.id))
        session, redirect_to, rows = await self.start_session(slug, account, method)
        position = await self._commit(account, *others, side_rows=[*extra_rows, *rows])
        return SignInResult(account.id, account.status, position, session.session_id, session.cookie, redirect_to)

    # --- loading

    def account_by_email(self, slug: str, email: str) -> PortalAccount | None:
        try:
            identity = email_identity(email)
        except (EmailNotValidError, ValueError):
            return None
        return self._account_or_none(slug, ids.account_id(slug, identity))

    def _account_or_none(self, slug: str, account_id: UUID) -> PortalAccount | None:
        # The type is checked on the stored events before anything is built from them (as
        # claims.py does): an invitation's or a workspace's id opens nothing.
        stored = self.recorder.select_events(account_id)
        if not stored or stored[0].topic != _ACCOUNT_CREATED:
            return None
        account = project_aggregate(None, map(self.mapper.to_domain_event, stored))
        return account if account.workspace == slug else None

    # --- requests that send something: silent about whether the account exists

    async def request_sign_in(self, slug: str, email: str) -> int | None:
        """Send a magic link or a code, per the workspace's method. None (and nothing stored)
        when there is no active account for the address or the workspace signs in by password."""
        for _ in range(MAX_ATTEMPTS):
            account = await asyncio.to_thread(self.account_by_email, slug, email)
            if account is None or account.status != ACTIVE:
                return None
            workspace = await self._workspace_for_invite(slug)
            settings, at = workspace.settings, _now()
            if not settings["portal_enabled"]:
                return None
            try:
                if settings["sign_in_method"] == "magic_link":
                    ttl = timedelta(minutes=settings.get("magic_link_ttl_minutes") or 15)
                    account.request_magic_link(nonce=tokens.new_nonce(), expires_at=at + ttl, email=account.email,
                                               sender=workspace.sender, actor=_actor(account.id))
                elif settings["sign_in_method"] == "code":
                    channels = ["email", "sms"] if account.phone else ["email"]
                    account.issue_code(nonce=tokens.new_nonce(), expires_at=at + CODE_TTL, at=at, email=account.email,
                                       channels=channels, sender=workspace.sender, actor=_actor(account.id))
                else:
                    return None
            except LockedOut:
                return None
            try:
                return await self._commit(account)
            except IntegrityError:
                continue
        return None

    async def forgot_password(self, slug: str, email: str) -> int | None:
        """Send a password-reset link (the same link and email staff's reset action sends)."""
        for _ in range(MAX_ATTEMPTS):
            account = await asyncio.to_thread(self.account_by_email, slug, email)
            if account is None or account.status != ACTIVE:
                return None
            workspace = await self._workspace_for_invite(slug)
            invitation = await asyncio.to_thread(self.repository.get, account.invitation_id)
            account.request_password_reset(nonce=tokens.new_nonce(), expires_at=_now() + RESET_TTL,
                                           email=invitation.email, name=account.name, sender=workspace.sender,
                                           actor=_actor(account.id))
            try:
                return await self._commit(account)
            except IntegrityError:
                continue
        return None

    # --- links: a GET checks (changes nothing), the POST signs in

    def check_link(self, slug: str, token: str, purpose: str) -> PortalAccount:
        """The account a magic or reset link opens, or LinkInvalid; changes nothing. Every
        link that opens nothing costs the same: one read of the id's events, one MAC."""
        parsed = tokens.parse_token(token)
        account = self._account_or_none(slug, parsed[0]) if parsed else None
        nonce = None
        if account is not None:
            nonce = account.magic_nonce if purpose == tokens.MAGIC else account.reset_nonce
        valid = tokens.verify_token(self.secret_key, purpose, parsed[0] if parsed else ids.NAMESPACE, nonce or _NO_NONCE,
                                    parsed[1] if parsed else b"")
        if account is None or nonce is None:
            raise LinkInvalid()
        if purpose == tokens.MAGIC:
            account.check_magic_link(valid, _now())
        else:
            account.check_reset_link(valid, _now())
        return account

    async def sign_in_with_magic_link(self, slug: str, token: str, client: Client) -> SignInResult:
        account = await asyncio.to_thread(self.check_link, slug, token, tokens.MAGIC)
        try:
            return await self._signed_in(slug, account, "magic_link", client)
        except (IntegrityError, LockedOut):  # spent concurrently; or locked out: the link opens nothing now
            raise LinkInvalid() from None

    async def reset_password(self, slug: str, token: str, password: str, client: Client) -> SignInResult:
        """Set a new password from a reset link: every other session ends (the access epoch
        moves on), the link is spent, and the client is signed in."""
        account = await asyncio.to_thread(self.check_link, slug, token, tokens.RESET)
        if reason := passwords.problem_with(password, account.email, account.name):
            raise WeakPassword(reason)
        password_hash = await asyncio.to_thread(passwords.hash_password, password)
        account.set_password(at=_now(), reason="reset", actor=_actor(account.id))
        try:
            return await self._signed_in(slug, account, "password", client,
                                         extra_rows=(credentials.store(account.id, password_hash),))
        except IntegrityError:
            raise LinkInvalid() from None

    # --- checks that answer: the same work whether or not the account exists

    async def _failed(self, slug: str, account_id: UUID, method: str, client: Client, defer: Defer | None) -> None:
        """Record a wrong code or password. With `defer`, after the answer: an address with an
        account must not answer slower (a commit) than one without. The fifth failure in a
        row locks the account; that attempt still answers like any wrong one, and the next
        gets 429 (as the per-email limit answers for any address by then)."""
        work = self._store_failure(slug, account_id, method, client)
        if defer is not None:
            defer(work)
        else:
            await work

    async def _store_failure(self, slug: str, account_id: UUID, method: str, client: Client) -> None:
        workspace = await self._workspace_for_invite(slug)
        for _ in range(MAX_ATTEMPTS):
            account = await asyncio.to_thread(self._account_or_none, slug, account_id)
            if account is None or account.status != ACTIVE:
                return
            if account.locked_until is not None and _now() < account.locked_until:
                return  # a concurrent attempt locked it already
            account.fail_verification(method=method, at=_now(), ip=client.ip, user_agent=client.user_agent,
                                      sender=workspace.sender, actor=_actor(account.id))
            try:
                await self._commit(account)
                return
            except IntegrityError:
                continue  # another attempt on this account stored first: count on its new state

    async def sign_in_with_code(self, slug: str, email: str, code: str, client: Client,
                                defer: Defer | None = None) -> SignInResult:
        for _ in range(MAX_ATTEMPTS):
            account = await asyncio.to_thread(self.account_by_email, slug, email)
            at = _now()
            nonce = account.live_code_nonce(at) if account is not None else None
            account_id = account.id if account is not None else ids.NAMESPACE
            matches = tokens.verify_sign_in_code(self.secret_key, account_id, nonce or _NO_NONCE, code[:32])
            if account is None or account.status != ACTIVE:
                raise WrongCode()
            account.check_not_locked(at)
            if not (matches and nonce):
                await self._failed(slug, account.id, "code", client, defer)
                raise WrongCode()
            try:
                return await self._signed_in(slug, account, "code", client)
            except IntegrityError:
                continue  # another attempt on this account stored first: check again on its new state
        raise WrongCode()

    async def sign_in_with_password(self, slug: str, email: str, password: str, client: Client,
                                    defer: Defer | None = None) -> SignInResult:
        for _ in range(MAX_ATTEMPTS):
            account = await asyncio.to_thread(self.account_by_email, slug, email)
            account_id = account.id if account is not None else ids.NAMESPACE
            stored = await asyncio.to_thread(credentials.password_hash, self.recorder.datastore, account_id)
            matches = await asyncio.to_thread(passwords.verify, stored, password)
            if account is None or account.status != ACTIVE:
                raise WrongPassword()
            account.check_not_locked(_now())
            if not matches:
                await self._failed(slug, account.id, "password", client, defer)
                raise WrongPassword()
            try:
                return await self._signed_in(slug, account, "password", client)
            except IntegrityError:
                continue
        raise WrongPassword()
