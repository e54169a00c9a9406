"""Trip: remembers a trip's shares, so auto-invite decides once per trip.

Its id is derived from (workspace, upstream trip id). The first share creates it and
records auto-invite's decision in the same event (invited whom, or skipped and why); two
first shares racing (two consumer instances) collide on version 1 in the event store, and
the loser re-reads the trip and records its share as a later one. Every share's event id
is kept, so a redelivered or replayed share changes nothing. Travelers are recorded as
shared (plus the account id their email derives), for the read side's travelers strip.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invite_service.domain import ids


class Trip(Aggregate):
    @staticmethod
    def create_id(workspace: str, trip_id: str) -> UUID:
        return ids.trip_id(workspace, trip_id)

    @event("TripFirstShared")
    def __init__(
        self,
        workspace: str,
        trip_id: str,
        share: dict[str, Any],
        travelers: list[dict[str, Any]],
        auto_invite: dict[str, Any],
        actor: dict[str, Any],
    ) -> None:
        self.workspace = workspace
        self.trip_id = trip_id
        self.share_ids: list[str] = [str(share["event_id"])]
        self.auto_invite = auto_invite

    def has_seen(self, share_event_id: UUID | str) -> bool:
        return str(share_event_id) in self.share_ids

    def record_share(self, share: dict[str, Any], travelers: list[dict[str, Any]], actor: dict[str, Any]) -> bool:
        """A later share: recorded (for its travelers), never a second decision. False if seen before."""
        if self.has_seen(share["event_id"]):
            return False
        self._shared(workspace=self.workspace, trip_id=self.trip_id, share=share, travelers=travelers, actor=actor)
        return True

    @event("TripShared")
    def _shared(
        self, workspace: str, trip_id: str, share: dict[str, Any], travelers: list[dict[str, Any]], actor: dict[str, Any]
    ) -> None:
        self.share_ids.append(str(share["event_id"]))
