"""Invitation commands: invite a contact (a new account and its first invitation), or
many at once (a bulk: every row's aggregates built first, then committed together)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import IntegrityError, JSONTranscoder, StoredEvent
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from services.common import tokens
from services.invite_service.domain import ids
from services.invite_service.domain.errors import DomainError, DuplicateEmail
from services.invite_service.domain.invitation import Invitation, inviter_of
from services.invite_service.domain.portal_account import PortalAccount
from services.invite_service.domain.workspace import BUILT_IN_ROLES, Workspace


@dataclass(frozen=True)
class InviteCommand:
    email: str  # already validated and normalised at the edge (contacts.email_identity): the account's identity
    name: str | None
    role: str
    company: str | None = None
    phone: str | None = None
    contact_id: str | None = None
    resources: tuple[dict[str, str], ...] = ()
    channels: tuple[str, ...] = ("email",)
    address: str | None = None  # the address as typed, which the invitation is sent to; default `email`


@dataclass(frozen=True)
class InviteResult:
    account_id: UUID
    invitation_id: UUID
    expires_at: datetime
    position: int
    status: str = "pending"


BULK_CHUNK_ROWS = 500  # rows per transaction: bigger batches insert faster, smaller ones start saving sooner


@dataclass(frozen=True)
class BulkOutcome:
    """One bulk row: created (with its position) or not, and why."""

    status: Literal["created", "duplicate", "invalid"]
    account_id: UUID | None
    error: DomainError | None = None
    position: int | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class InvitationCommands:
    async def invite(self, slug: str, cmd: InviteCommand, actor: dict[str, Any], method: str = "manual") -> InviteResult:
        workspace = await self._workspace_for_invite(slug)
        workspace.check_can_invite(cmd.role)
        # No look-up before saving: the derived account id makes the event store itself
        # refuse a second account for the email, also between two concurrent requests.
        account_id = ids.account_id(slug, cmd.email)
        # Built as a bulk row is (StoredInvites): the same stored events as the aggregates',
        # for a fraction of the CPU, which bounds the rate of concurrent invites.
        (row,) = self._stored_rows.build(workspace, slug, [(cmd, account_id)], actor, method)
        try:
            position = await self._committer.commit(row.events)
        except IntegrityError:  # lost a race with another invite of the same email
            raise DuplicateEmail() from None
        return InviteResult(account_id, row.invitation_id, row.expires_at, position)

    async def invite_many(
        self, slug: str, commands: Sequence[InviteCommand], actor: dict[str, Any], method: str = "manual"
    ) -> list[BulkOutcome]:
        """Invite every contact it can; one outcome per command, in order.

        The workspace's gates (portal on, Pro plan) refuse the whole request; a row's own
        problem (its role, an account that exists, an email repeated in the same bulk) only
        that row. Rows are built and committed in chunks, each chunk one write of the group
        committer (so one transaction, shared with concurrent single invites); the next
        chunk is built while the previous one is being saved."""
        workspace = await self._workspace_for_invite(slug)
        workspace.check_can_invite(BUILT_IN_ROLES[-1])  # a built-in role: only the gates can refuse
        account_ids = [ids.account_id(slug, cmd.email) for cmd in commands]
        # One look-up for the whole bulk: a re-sent bulk must not fall back to saving each
        # row alone to find out that every one of them already exists.
        taken = await asyncio.to_thread(self._existing_accounts, account_ids)
        outcomes: list[BulkOutcome | None] = [None] * len(commands)
        todo: list[int] = []
        for index, (cmd, account_id) in enumerate(zip(commands, account_ids, strict=True)):
            if account_id in taken:
                outcomes[index] = BulkOutcome("duplicate", account_id, DuplicateEmail())
                continue
            try:
                workspace.check_can_invite(cmd.role)
            except DomainError as exc:  # an unknown role
                outcomes[index] = BulkOutcome("invalid", None, exc)
                continue
            taken.add(account_id)
            todo.append(index)
        saving: list[asyncio.Task[list[tuple[int, int | BaseException]]]] = []
        for start in range(0, len(todo), BULK_CHUNK_ROWS):
            chunk = todo[start : start + BULK_CHUNK_ROWS]
            # In a worker thread: the event loop stays free to hand the previous chunk to the
            # committer (whose save waits mostly on PostgreSQL) and to serve other requests.
            built = await asyncio.to_thread(
                self._stored_rows.build, workspace, slug, [(commands[i], account_ids[i]) for i in chunk], actor, method
            )
            writes = [row.events for row in built]
            saving.append(asyncio.create_task(self._save_rows(list(zip(chunk, writes, strict=True)))))
        for results in await asyncio.gather(*saving):
            for index, result in results:
                if isinstance(result, IntegrityError):  # a concurrent invite of the same email won
                    outcomes[index] = BulkOutcome("duplicate", account_ids[index], DuplicateEmail())
                elif isinstance(result, BaseException):
                    raise result  # chunks already committed stay; a re-sent bulk reports them as duplicates
                else:
                    outcomes[index] = BulkOutcome("created", account_ids[index], position=result)
        return [o for o in outcomes if o is not None]

    async def _save_rows(self, rows: list[tuple[int, list[Any]]]) -> list[tuple[int, int | BaseException]]:
        """One write for the chunk; if a row's account appeared meanwhile, each row alone."""
        try:
            position = await self._committer.commit([e for _, events in rows for e in events])
        except IntegrityError:
            alone = await asyncio.gather(*(self._committer.commit(events) for _, events in rows), return_exceptions=True)
            return [(index, result) for (index, _), result in zip(rows, alone, strict=True)]
        return [(index, position) for index, _ in rows]

    def _existing_accounts(self, account_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these accounts the event store already has (their first event exists)."""
        if not account_ids:
            return set()
        query = SQL("SELECT originator_id FROM {} WHERE originator_id = ANY(%s) AND originator_version = 1").format(
            Identifier(self.recorder.events_table_name)
        )
        with self.recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, (list(account_ids),))
            return {row["originator_id"] for row in curs.fetchall()}


@dataclass(frozen=True)
class StoredInvite:
    """One invite's stored events (AccountCreated, then InviteSent), and what its answer needs."""

    events: list[StoredEvent]
    invitation_id: UUID
    expires_at: datetime


class StoredInvites:
    """Invites as the event store will hold them, built without aggregate objects.

    An invite (a single one, or a bulk's row) only ever creates aggregates: each row is an AccountCreated and an InviteSent,
    version 1 of two new aggregates, whose __init__ checks nothing the command has not checked
    already (the workspace's gates and the role). Building them through the library
    (`@event` machinery, the aggregate objects, then the mapper's JSON encoding with a
    callback per uuid and datetime) was over half of a 10,000-row bulk's CPU. Here each
    event's state is what the mapper would store for it (the same keys, in the same order,
    uuids and datetimes in the transcoder's `{"_type_", "_data_"}` form), then compressed and
    enciphered as the Application is configured to, so what is stored is byte for byte what
    the aggregates would have stored, and every reader (the relay, history, point in time)
    decodes it into the same domain events. With the library's JSON transcoder the text is
    written from a template per bulk (the row's own values encoded by the transcoder's own
    encoder); with any other transcoder the state dict goes through `encode`.
    tests/unit/test_stored_invites.py keeps all three equal.
    """

    ACCOUNT_CREATED = get_topic(PortalAccount.AccountCreated)
    INVITE_SENT = get_topic(Invitation.InviteSent)
    ACCOUNT_TOPIC = get_topic(PortalAccount)
    INVITATION_TOPIC = get_topic(Invitation)

    def __init__(self, mapper: Any) -> None:
        self._mapper = mapper
        encoder = getattr(mapper.transcoder, "encoder", None)
        # Events written straight into JSON text when the transcoder is the library's JSON one
        # with its usual settings (what `encode` of the state dict would give, character for
        # character: tests/unit/test_stored_invites.py); else through `encode`.
        self._direct = (
            isinstance(mapper.transcoder, JSONTranscoder)
            and isinstance(encoder, json.JSONEncoder)
            and (encoder.item_separator, encoder.key_separator, encoder.ensure_ascii) == (",", ":", False)
            and not encoder.sort_keys
            and encoder.indent is None
        )

    def build(
        self, workspace: Workspace, slug: str, rows: Sequence[tuple[InviteCommand, UUID]], actor: dict[str, Any],
        method: str,
    ) -> list[StoredInvite]:
        """Each row's two stored events (account, then invitation), for a row already checked."""
        nonces = tokens.new_nonces(len(rows))
        randomness = os.urandom(16 * len(rows))
        ttl = timedelta(hours=workspace.settings["invite_ttl_hours"])
        sender = workspace.sender
        inviter = inviter_of(actor)
        encode = self._mapper.transcoder.encode
        compressor, cipher = self._mapper.compressor, self._mapper.cipher
        if self._direct:
            value = self._mapper.transcoder.encoder.encode

            def fixed(obj: Any) -> str:  # a value the same for every row, as JSON, safe in a %-template
                return value(obj).replace("%", "%%")

            account_json = (
                '{"timestamp":{"_type_":"datetime_iso","_data_":"%s"},"originator_topic":' + fixed(self.ACCOUNT_TOPIC)
                + ',"workspace":' + fixed(slug)
                + ',"email":%s,"name":%s,"role":%s,"company":%s,"phone":%s,"contact_id":%s,"resources":%s,'
                '"invitation_id":{"_type_":"uuid_hex","_data_":"%s"},"actor":' + fixed(actor) + "}"
            )
            invitation_json = (
                '{"timestamp":{"_type_":"datetime_iso","_data_":"%s"},"originator_topic":' + fixed(self.INVITATION_TOPIC)
                + ',"workspace":' + fixed(slug)
                + ',"account_id":{"_type_":"uuid_hex","_data_":"%s"},"email":%s,"name":%s,"nonce":%s,'
                '"expires_at":{"_type_":"datetime_iso","_data_":"%s"},"channels":%s,"method":' + fixed(method)
                + ',"sender":' + fixed(sender) + ',"actor":' + fixed(actor)
                + ',"inviter_name":' + fixed(inviter["inviter_name"])
                + ',"inviter_staff_id":' + fixed(inviter["inviter_staff_id"]) + ',"phone":%s}'
            )
        out = []
        for index, ((cmd, account_id), nonce) in enumerate(zip(rows, nonces, strict=True)):
            invitation_id = UUID(bytes=randomness[16 * index : 16 * index + 16], version=4)  # as uuid4() makes it
            now = _now()
            if self._direct:
                at = now.isoformat()
                states = (
                    (account_json % (
                        at, value(cmd.email), value(cmd.name), value(cmd.role), value(cmd.company), value(cmd.phone),
                        value(cmd.contact_id), value(list(cmd.resources)), invitation_id.hex,
                    )).encode(),
                    (invitation_json % (
                        at, account_id.hex, value(cmd.address or cmd.email), value(cmd.name), value(nonce),
                        (now + ttl).isoformat(), value(list(cmd.channels)), value(cmd.phone),
                    )).encode(),
                )
            else:
                states = (
                    encode({
                        "timestamp": _iso(now),
                        "originator_topic": self.ACCOUNT_TOPIC,
                        "workspace": slug,
                        "email": cmd.email,
                        "name": cmd.name,
                        "role": cmd.role,
                        "company": cmd.company,
                        "phone": cmd.phone,
                        "contact_id": cmd.contact_id,
                        "resources": list(cmd.resources),
                        "invitation_id": _hex(invitation_id),
                        "actor": actor,
                    }),
                    encode({
                        "timestamp": _iso(now),
                        "originator_topic": self.INVITATION_TOPIC,
                        "workspace": slug,
                        "account_id": _hex(account_id),
                        "email": cmd.address or cmd.email,
                        "name": cmd.name,
                        "nonce": nonce,
                        "expires_at": _iso(now + ttl),
                        "channels": list(cmd.channels),
                        "method": method,
                        "sender": sender,
                        "actor": actor,
                        **inviter,
                        "phone": cmd.phone,
                    }),
                )
            events = []
            for originator_id, topic, stored_state in (
                (account_id, self.ACCOUNT_CREATED, states[0]),
                (invitation_id, self.INVITE_SENT, states[1]),
            ):
                if compressor:
                    stored_state = compressor.compress(stored_state)
                if cipher:
                    stored_state = cipher.encrypt(stored_state)
                events.append(StoredEvent(originator_id=originator_id, originator_version=1, topic=topic, state=stored_state))
            out.append(StoredInvite(events, invitation_id, now + ttl))
        return out


def _iso(at: datetime) -> dict[str, str]:
    return {"_type_": "datetime_iso", "_data_": at.isoformat()}  # the library's DatetimeAsISO


def _hex(value: UUID) -> dict[str, str]:
    return {"_type_": "uuid_hex", "_data_": value.hex}  # the library's UUIDAsHex


def _new_invite(
    workspace: Workspace, slug: str, cmd: InviteCommand, actor: dict[str, Any], method: str, nonce: str | None = None
) -> tuple[PortalAccount, Invitation]:
    workspace.check_can_invite(cmd.role)
    # No look-up before saving: the derived account id makes the event store itself
    # refuse a second account for the email, also between two concurrent requests.
    invitation = Invitation(
        workspace=slug,
        account_id=ids.account_id(slug, cmd.email),
        email=cmd.address or cmd.email,
        name=cmd.name,
        nonce=nonce or tokens.new_nonce(),
        expires_at=_now() + timedelta(hours=workspace.settings["invite_ttl_hours"]),
        channels=list(cmd.channels),
        method=method,
        sender=workspace.sender,
        actor=actor,
        phone=cmd.phone,
        **inviter_of(actor),
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
