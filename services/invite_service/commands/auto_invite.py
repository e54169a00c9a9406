"""Auto-invite on first share: a trip's first invoice or proposal share invites one traveler.

One command per share event (`trips.shares.v1`), run by the `autoinvite` consumer. In ONE
event-store transaction it records the share on the trip's aggregate (services/invite_service/
domain/trip.py) and, when the decision is to invite, creates the account and its invitation
through the same path staff invites take (commands/invitations.py `_new_invite`). So either
the decision and the invite are both stored or neither is, and:

- a redelivered or replayed share finds its event id on the trip: nothing happens;
- a later share of the trip is recorded (for its travelers) and invites nobody;
- two first shares racing (two consumer instances): both build version 1 of the trip, the
  event store refuses the second, which reads the trip again and records a later share;
- a staff invite of the candidate racing us: the account's derived id collides, and the
  retry sees the account and records `account_exists`.

Workspace gates (unknown workspace, toggle off, portal disabled, free plan) and the lack of
a candidate are decisions too: recorded on the trip with their reason, never retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from contracts import topics
from contracts.shares import Traveler, TripShareV1
from services.invite_service import contacts
from services.invite_service.commands.invitations import InviteCommand, _new_invite
from services.invite_service.domain import ids
from services.invite_service.domain.errors import DomainError, WorkspaceNotFound
from services.invite_service.domain.trip import Trip

AUTO_METHOD = "auto_on_share"
AUTO_ROLE = "customer"  # travelers are the agency's customers; staff may change nothing here
RACE_ATTEMPTS = 5  # re-checks after losing a race; each loss means someone else's write committed

T = TypeVar("T")
Outcome = Literal["invited", "skipped", "later_share", "already_handled"]


@dataclass(frozen=True)
class AutoInviteResult:
    outcome: Outcome
    trip: UUID
    reason: str | None = None
    account_id: UUID | None = None
    invitation_id: UUID | None = None
    position: int | None = None


def _identity(address: str | None) -> str | None:
    """The account identity of an address, or None when there is none or it is not valid."""
    if not address or not address.strip():
        return None
    try:
        return contacts.email_identity(address)
    except ValueError:  # email-validator's errors are ValueErrors
        return None


def _phone(value: str | None) -> str | None:
    try:
        return contacts.normalise_phone(value)
    except ValueError:  # a phone we cannot use is left out, not a reason to skip the invite
        return None


def system_actor(share: TripShareV1) -> dict[str, Any]:
    return {
        "kind": "system",
        "reason": f"first {share.kind} share",
        "cause": {
            "event_id": str(share.event_id),
            "topic": topics.TRIP_SHARES,
            "trip_id": share.trip_id,
            "kind": share.kind,
            "shared_by": share.shared_by,
        },
    }


def candidate(travelers: list[Traveler]) -> Traveler | None:
    """The primary traveler with a valid email, else the first traveler with one."""
    with_email = [t for t in travelers if _identity(t.email)]
    return next((t for t in with_email if t.primary), None) or next(iter(with_email), None)


class AutoInviteCommands:
    # Where the command's event-store reads run: asyncio's default executor unless the process
    # gives it a pool of its own (services/autoinvite/main.py).
    read_executor: Executor | None = None

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.read_executor, fn, *args)

    async def auto_invite(self, share: TripShareV1) -> AutoInviteResult:
        """Record the share on its trip and, on the trip's first share, invite its one candidate."""
        for _ in range(RACE_ATTEMPTS):
            try:
                return await self._auto_invite_once(share)
            except IntegrityError:
                continue  # another share of this trip, or an invite of the candidate, committed first: look again
        raise IntegrityError(f"trip {share.workspace}/{share.trip_id}: lost {RACE_ATTEMPTS} races in a row")

    def _get_trip(self, trip_id: UUID) -> Trip | None:
        try:
            return self.repository.get(trip_id)
        except AggregateNotFoundError:
            return None

    async def _auto_invite_once(self, share: TripShareV1) -> AutoInviteResult:
        slug = share.workspace
        trip_id = ids.trip_id(slug, share.trip_id)
        actor = system_actor(share)
        share_info = {
            "event_id": str(share.event_id),
            "kind": share.kind,
            "shared_by": share.shared_by,
            "occurred_at": share.occurred_at.isoformat(),
        }
        travelers = [_traveler_record(slug, t) for t in share.travelers]
        trip = await self._read(self._get_trip, trip_id)
        if trip is not None:
            if not trip.record_share(share=share_info, travelers=travelers, actor=actor):
                return AutoInviteResult("already_handled", trip_id)
            return AutoInviteResult("later_share", trip_id, position=await self._commit(trip))

        decision, invite = await self._decide(share, actor)
        trip = Trip(
            workspace=slug, trip_id=share.trip_id, share=share_info, travelers=travelers, auto_invite=decision,
            actor=actor,
        )
        position = await self._commit(trip, *invite)
        return AutoInviteResult(
            decision["outcome"], trip_id, decision.get("reason"),
            UUID(decision["account_id"]) if decision.get("account_id") else None,
            UUID(decision["invitation_id"]) if decision.get("invitation_id") else None,
            position,
        )

    async def _decide(self, share: TripShareV1, actor: dict[str, Any]) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """The decision to record on the trip, and the aggregates an invite creates (none when skipped)."""
        slug = share.workspace
        try:
            # Through the invite path's cache (re-read at most once a second): a settings change
            # reaches auto-invite within a second, as it reaches staff invites on other replicas.
            workspace = await self._workspace_for_invite(slug)
        except WorkspaceNotFound:
            return _skipped("unknown_workspace"), ()
        if not workspace.settings.get("auto_invite_on_first_share"):
            return _skipped("auto_invite_off"), ()
        try:
            workspace.check_can_invite(AUTO_ROLE)
        except DomainError as exc:  # portal_disabled, plan_required
            return _skipped(exc.code), ()
        chosen = candidate(share.travelers)
        if chosen is None:
            return _skipped("no_candidate"), ()
        email = _identity(chosen.email)
        assert email is not None
        account_id = ids.account_id(slug, email)
        if await self._read(self._existing_accounts, [account_id]):  # pending, active or disabled alike
            return _skipped("account_exists", account_id=str(account_id), email=email), ()
        command = InviteCommand(
            email=email,
            name=chosen.name,
            role=AUTO_ROLE,
            phone=_phone(chosen.phone),
            contact_id=chosen.contact_id,
            resources=({"type": "trip", "id": share.trip_id},),
            channels=("email",),
            address=chosen.email.strip() if chosen.email else None,
        )
        account, invitation = _new_invite(workspace, slug, command, actor, AUTO_METHOD)
        decision = {
            "outcome": "invited", "reason": None, "account_id": str(account.id),
            "invitation_id": str(invitation.id), "email": email,
        }
        return decision, (account, invitation)


def _skipped(reason: str, **found: Any) -> dict[str, Any]:
    return {"outcome": "skipped", "reason": reason, "account_id": None, "invitation_id": None, "email": None} | found


def _traveler_record(slug: str, traveler: Traveler) -> dict[str, Any]:
    """A traveler as the trip records it: as shared, plus the account id their email derives."""
    identity = _identity(traveler.email)
    return {
        "contact_id": traveler.contact_id,
        "name": traveler.name,
        "email": traveler.email,
        "phone": traveler.phone,
        "primary": traveler.primary,
        "account_id": str(ids.account_id(slug, identity)) if identity else None,
    }
