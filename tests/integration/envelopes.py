"""Builders of the envelopes the relay publishes, for the projection tests, and `project`,
which applies them through the projector's typed handlers as its consumer routes them.

Ids and versions follow the write side: the account id is the AccountCreated aggregate,
each invite is its own Invitation aggregate, event ids derive from (aggregate, version).
Known types come back as their typed envelope (`AccountCreatedV1`, ...), as a consumer
receives them; `other` makes any type, known or not, from a raw payload.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

from contracts.access import (
    ACCOUNT_ACTIVATED,
    ACCOUNT_CREATED,
    INVITE_SENT,
    AccessEventV1,
    AccountActivatedV1,
    AccountCreatedV1,
    InviteSentV1,
    event_id_for,
    parse_access_event,
)
from contracts.deliveries import DeliveryOutcomeV1
from projections import status_list
from projections.projector import Projector
from services.common.event_routing import route

# Far above any real event-store position, so a made-up event never answers for a real one
# (a read with `min_position` looks the position up among what was applied).
_positions = count(10**15)
_status_list_handler = route(status_list.HANDLERS, otherwise=status_list.on_other_event)


async def project(pool, *events: AccessEventV1) -> list[bool]:
    """Apply each event to the status list as the projector would: False where it was applied before."""
    projector = Projector(pool)
    return [await _status_list_handler(event.type)(event, projector) for event in events]


@dataclass
class AccountStory:
    """One account's events in the order the write side stores them."""

    workspace: str
    email: str
    name: str = "Dana Client"
    company: str | None = "Acme Charters"
    role: str = "charter_client"
    resources: list[dict[str, str]] = field(default_factory=lambda: [{"type": "trip", "id": "trip-1"}])
    at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    account_id: uuid.UUID = field(default_factory=uuid.uuid4)
    invitation_id: uuid.UUID = field(default_factory=uuid.uuid4)
    account_version: int = 0

    def _envelope(self, type_: str, aggregate_id: uuid.UUID, version: int, data: dict, at: datetime, actor=None):
        return parse_access_event({
            "event_id": str(event_id_for(aggregate_id, version)),
            "type": type_,
            "workspace": self.workspace,
            "account_id": str(self.account_id),
            "aggregate_id": str(aggregate_id),
            "aggregate_version": version,
            "position": next(_positions),
            "occurred_at": at,
            "actor": actor or {"kind": "staff", "id": "staff-7"},
            "data": data,
        })

    def created(self) -> AccountCreatedV1:
        self.account_version += 1
        data = {
            "workspace": self.workspace, "email": self.email, "name": self.name, "role": self.role,
            "company": self.company, "phone": "+15555550100", "contact_id": "c-1", "resources": self.resources,
            "invitation_id": str(self.invitation_id),
        }
        return self._envelope(ACCOUNT_CREATED, self.account_id, self.account_version, data, self.at)

    def invite_sent(self, ttl_hours: int = 168) -> InviteSentV1:
        data = {
            "workspace": self.workspace, "account_id": str(self.account_id), "email": self.email,
            "name": self.name, "nonce": "n-" + uuid.uuid4().hex, "channels": ["email"], "method": "manual",
            "expires_at": (self.at + timedelta(hours=ttl_hours)).isoformat(),
            "sender": {"workspace_name": "Acme Charters", "sender_name": "Acme"},
        }
        return self._envelope(INVITE_SENT, self.invitation_id, 1, data, self.at)

    def activated(self, at: datetime | None = None) -> AccountActivatedV1:
        self.account_version += 1
        actor = {"kind": "client", "id": str(self.account_id)}
        data = {"invitation_id": str(self.invitation_id)}
        return self._envelope(ACCOUNT_ACTIVATED, self.account_id, self.account_version, data,
                              at or self.at + timedelta(hours=1), actor)

    def other(self, type_: str, data: dict | None = None) -> AccessEventV1:
        """The next event of the account, of any type; a known type's `data` must match its contract."""
        self.account_version += 1
        return self._envelope(type_, self.account_id, self.account_version, data or {}, self.at)

    def delivery(self, status: str = "sent", attempt: int = 1, delivery_id: uuid.UUID | None = None):
        return DeliveryOutcomeV1(
            delivery_id=delivery_id or uuid.uuid4(), event_id=event_id_for(self.invitation_id, 1),
            account_id=self.account_id, workspace=self.workspace, channel="email", provider="smtp",
            status=status, attempt=attempt, error=None if status == "sent" else "mailbox full",
            at=self.at + timedelta(minutes=attempt),
        )
