"""`trips.shares.v1` (inbound): an upstream trip or invoice service shared a document of a trip.

Upstream teams publish these, keyed by trip id, with whatever Kafka client they use;
Porchlight's `autoinvite` consumer turns the first invoice or proposal share of a trip into
a portal invite for one of its travelers. The JSON Schema of `TripShareV1` is published in
`docs/schemas/trip-share-v1.json` so producers can validate what they send.

Within v1 every model ignores fields it does not know (producers may add, never remove or
change): a message with an extra field is handled, not dead-lettered.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.access import UtcDatetime


class _Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Traveler(_Contract):
    """A traveler on the trip, as the upstream service knows them (a contact of the workspace)."""

    contact_id: str | None = Field(None, description="The host app's contact id", examples=["c-311"])
    name: str | None = Field(None, examples=["Ana Lima"])
    email: str | None = Field(None, description="As typed upstream; may be missing", examples=["ana@example.com"])
    phone: str | None = Field(None, description="As typed upstream (E.164 preferred)", examples=["+14155550123"])
    primary: bool = Field(False, description="The trip's primary traveler (the one auto-invite prefers)")


class TripShareV1(_Contract):
    """A document of a trip was shared with its travelers. Key: the trip id."""

    schema_version: Literal[1] = 1
    event_id: uuid.UUID = Field(description="Stable id of this share: the same on every re-publish")
    workspace: str = Field(min_length=1, max_length=200, description="Workspace slug", examples=["pride-travelers"])
    trip_id: str = Field(min_length=1, max_length=200, description="The host app's trip id", examples=["T-1042"])
    kind: Literal["invoice", "proposal"] = Field(description="What was shared")
    shared_by: str | None = Field(None, description="Who shared it (the host app's staff id)", examples=["staff-42"])
    occurred_at: UtcDatetime = Field(description="When it was shared")
    travelers: list[Traveler] = Field(default_factory=list, max_length=500, description="The trip's travelers")

    @property
    def key(self) -> bytes:
        """Kafka key: one trip's shares in order on one partition."""
        return self.trip_id.encode()
