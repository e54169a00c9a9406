"""PortalAccount: one per (workspace, normalised email), whatever its state."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts import account_actions

from services.invite_service.domain import ids
from services.invite_service.domain.errors import InvalidState

PENDING, ACTIVE, DISABLED = "pending", "active", "disabled"


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

    def _check_pending(self) -> None:
        if self.status != PENDING:
            raise InvalidState(f"The account is {self.status}, not pending.", allowed=self.allowed_actions)

    @event("AccountActivated")
    def activate(self, invitation_id: UUID, actor: dict[str, Any]) -> None:
        self._check_pending()
        self.status = ACTIVE

    @property
    def allowed_actions(self) -> list[str]:
        # One table for both sides (the read side shows it): contracts/account_actions.py.
        return account_actions.allowed_actions(self.status)
