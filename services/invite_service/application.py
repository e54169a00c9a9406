"""The service layer: every command loads aggregates, calls them, and saves them together.

This is the only place that reads or writes the event store. Commands (in commands/, by
concern) return the notification-log position of what they stored, so callers (and tests)
can wait for the read side to catch up with their own write. There is one way to run a
command: as a coroutine, whose changes join a group commit (group_commit.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Notification, Recording, StoredEvent
from eventsourcing.utils import get_topic

from services.invite_service.commands.auto_invite import AutoInviteCommands, AutoInviteResult
from services.invite_service.commands.claims import ClaimCommands, ClaimResult
from services.invite_service.commands.invitations import (
    InvitationCommands,
    InviteCommand,
    InviteResult,
    StoredInvites,
)
from services.invite_service.commands.lifecycle import LifecycleCommands
from services.invite_service.commands.workspaces import Configured, WorkspaceCommands
from services.invite_service.domain.portal_account import PortalAccount
from services.invite_service.event_store import SideRow, SideRowRecorder
from services.invite_service.group_commit import GroupCommitter

__all__ = ["AutoInviteResult", "ClaimResult", "Configured", "InviteCommand", "InviteResult", "PortalAccess"]


class PortalAccess(
    WorkspaceCommands, InvitationCommands, ClaimCommands, LifecycleCommands, AutoInviteCommands, Application
):
    name = "porchlight"  # the event store table is porchlight_events

    def __init__(
        self, env: dict[str, str] | None = None, *, secret_key: bytes | None = None, commit_batch_max: int = 200
    ) -> None:
        # Our recorder, so a command's side rows (a claim's session) commit with its events.
        super().__init__(env={**(env or {}), "APPLICATION_RECORDER_TOPIC": get_topic(SideRowRecorder)})
        if not isinstance(self.recorder, SideRowRecorder):
            raise RuntimeError(f"PortalAccess needs the PostgreSQL event store, got {type(self.recorder).__name__}")
        # None for processes that only read the log (the relay): they can never mint or check a link.
        self._secret_key = secret_key
        self._committer = GroupCommitter(self._save_events, max_batch=commit_batch_max)
        self._workspace_cache = {}
        self._stored_rows = StoredInvites(self.mapper)

    def _save_events(self, events: Sequence[Any], side_rows: Sequence[SideRow]) -> list[Recording]:
        # The event store's own mapper and recorder, rather than `save(*events)`: save() checks
        # each object against runtime Protocols, which cost more CPU per invite than everything
        # else here together (Python 3.11), and we use none of what it adds (snapshots, cache,
        # notify hooks). Events may come already stored (a bulk's rows, StoredInvites).
        to_stored = self.mapper.to_stored_event
        stored = [e if isinstance(e, StoredEvent) else to_stored(e) for e in events]
        notification_ids = self.recorder.insert_events(stored, side_rows=side_rows) or []
        return [
            Recording(e, Notification(originator_id=s.originator_id, originator_version=s.originator_version,
                                      topic=s.topic, state=s.state, id=n))
            for e, s, n in zip(events, stored, notification_ids, strict=True)
        ]

    async def _commit(self, *aggregates: Any, side_rows: Sequence[SideRow] = ()) -> int:
        """Store the aggregates' new events (and side rows) atomically; returns their position."""
        events = [e for a in aggregates for e in a.collect_events()]
        return await self._committer.commit(events, side_rows)

    @property
    def secret_key(self) -> bytes:
        if not self._secret_key:
            raise RuntimeError("this Application was built without PORCHLIGHT_SECRET_KEY")
        return self._secret_key

    def get_account(self, account_id: UUID) -> PortalAccount:
        return self.repository.get(account_id)
