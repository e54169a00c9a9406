"""`porchlight.access.v1`: every domain event of the write side, as the relay publishes it.

The envelope is the same for every event type; `data` carries the event's own fields,
which never include a secret (links and codes are derived from a nonce and a key that
only Porchlight's processes hold).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The event types consumers branch on. Adding a type is not a breaking change;
# consumers must ignore types they do not know.
WORKSPACE_CREATED = "WorkspaceCreated"
WORKSPACE_SETTINGS_CHANGED = "WorkspaceSettingsChanged"
ACCOUNT_CREATED = "AccountCreated"
ACCOUNT_ACTIVATED = "AccountActivated"
INVITE_SENT = "InviteSent"
TOKEN_CLAIMED = "TokenClaimed"

# Namespace for event ids: uuid5(namespace, f"{aggregate_id}/{version}"), so the same
# stored event always gets the same id however often the relay publishes it.
EVENT_ID_NAMESPACE = uuid.UUID("6f1f2d0a-3f5e-4d55-9a57-2f5cf7f0f0a1")


def event_id_for(aggregate_id: uuid.UUID, version: int) -> uuid.UUID:
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}/{version}")


class Actor(BaseModel):
    """Who caused an event: a staff member, the client, or the system (with a reason)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["staff", "client", "system"]
    id: str | None = Field(None, description="Staff user id (JWT `sub`) or portal account id", examples=["staff-42"])
    reason: str | None = Field(None, description="Why the system acted", examples=["first invoice share"])


class AccessEventV1(BaseModel):
    """One domain event, as published to `porchlight.access.v1`, keyed by account id."""

    # Tolerant reader: adding a field is allowed within v1 (API.md), so a consumer that has
    # not been upgraded yet must ignore it, not dead-letter every message that carries it.
    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    event_id: uuid.UUID = Field(description="Stable id of this event: the same on every re-publish")
    type: str = Field(description="Event type, past tense", examples=[INVITE_SENT])
    workspace: str = Field(description="Workspace slug", examples=["pride-travelers"])
    account_id: uuid.UUID | None = Field(
        description="Portal account the event concerns; null for workspace-level events"
    )
    aggregate_id: uuid.UUID
    aggregate_version: int = Field(ge=1)
    position: int = Field(ge=1, description="Position in the event store's notification log")
    occurred_at: datetime
    actor: Actor
    data: dict[str, Any] = Field(default_factory=dict, description="The event's own fields; never a secret")

    @property
    def key(self) -> bytes:
        """Kafka key: the account id keeps one account's events in order on one partition."""
        return str(self.account_id or self.aggregate_id).encode()
