"""Invitation: one per invite sent. Holds the nonce the link is derived from, never the link."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invite_service.domain.errors import LinkInvalid


class Invitation(Aggregate):
    @event("InviteSent")
    def __init__(
        self,
        workspace: str,
        account_id: UUID,
        email: str,
        name: str | None,
        nonce: str,
        expires_at: datetime,
        channels: list[str],
        method: str,
        sender: dict[str, Any],
        actor: dict[str, Any],
        inviter_name: str | None = None,
        inviter_staff_id: str | None = None,
        phone: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.account_id = account_id
        self.email = email
        self.nonce = nonce
        self.expires_at = expires_at
        self.channels = channels
        self.claimed_at: datetime | None = None
        self.voided_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Neither claimed nor voided (it may have expired: voiding it still says what became of it)."""
        return self.claimed_at is None and self.voided_at is None

    def check_claimable(self, at: datetime) -> None:
        # One message for every reason: the client can do nothing different about any of them.
        if not self.is_open or at >= self.expires_at:
            raise LinkInvalid()

    @event("TokenClaimed")
    def claim(self, at: datetime, actor: dict[str, Any]) -> None:
        self.check_claimable(at)
        self.claimed_at = at

    @event("InvitationVoided")
    def void(self, reason: str, at: datetime, actor: dict[str, Any]) -> None:
        """The link stops working: `superseded` by a resend, or `revoked` with the account."""
        if not self.is_open:
            raise LinkInvalid("That invitation was already claimed or voided.")
        self.voided_at = at


def inviter_of(actor: dict[str, Any]) -> dict[str, str | None]:
    """Who an invitation is from, for its email: the staff member who acted (whose connected
    Gmail may send it, and whose name the email gives), nobody for the system."""
    if actor.get("kind") != "staff":
        return {"inviter_name": None, "inviter_staff_id": None}
    return {"inviter_name": actor.get("name"), "inviter_staff_id": actor.get("id")}
