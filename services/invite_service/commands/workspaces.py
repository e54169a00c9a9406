"""Workspace commands: configure the portal, and the gate every invite passes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.invite_service.domain import ids
from services.invite_service.domain.errors import WorkspaceNotFound
from services.invite_service.domain.workspace import Workspace

WORKSPACE_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Configured:
    workspace: Workspace
    created: bool
    position: int | None  # None when nothing changed, so nothing was stored


class WorkspaceCommands:
    _workspace_cache: dict[str, tuple[float, Workspace]]

    async def configure_workspace(self, slug: str, settings: dict[str, Any], actor: dict[str, Any]) -> Configured:
        """Create the workspace or apply the settings that changed."""
        try:
            workspace = await asyncio.to_thread(self.repository.get, ids.workspace_id(slug))
        except AggregateNotFoundError:
            workspace = Workspace(slug=slug, settings=settings, actor=actor)
            try:
                position = await self._commit(workspace)
            except IntegrityError:  # created concurrently: apply ours as a change instead
                return await self.configure_workspace(slug, settings, actor)
            return Configured(workspace, True, position)
        changes = workspace.changes_from(settings)
        if not changes:
            return Configured(workspace, False, None)
        workspace.change_settings(changes=changes, actor=actor)
        position = await self._commit(workspace)
        self._workspace_cache.pop(slug, None)
        return Configured(workspace, False, position)

    def get_workspace(self, slug: str) -> Workspace:
        try:
            return self.repository.get(ids.workspace_id(slug))
        except AggregateNotFoundError:
            raise WorkspaceNotFound() from None

    async def _workspace_for_invite(self, slug: str) -> Workspace:
        """The workspace, re-read at most once a second: every invite checks its gate, and
        a settings change reaching other API replicas a second later is an acceptable lag
        for the price of one fewer event-store read per invite."""
        cached = self._workspace_cache.get(slug)
        if cached is not None and time.monotonic() - cached[0] <= WORKSPACE_CACHE_SECONDS:
            return cached[1]
        workspace = await asyncio.to_thread(self.get_workspace, slug)
        self._workspace_cache[slug] = (time.monotonic(), workspace)
        return workspace
