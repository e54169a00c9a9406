"""Each workspace's team address (`notifier_workspaces`), for team notices.

Kept from WorkspaceCreated and WorkspaceSettingsChanged, because AccountActivated carries
no sender, and a failed delivery's notice may outlive the event that caused it. An event's
own Sender.team_notify_email, where it has one, wins (it is what the workspace said then).
"""

from __future__ import annotations

import asyncpg

from contracts.access import WORKSPACE_CREATED, WORKSPACE_SETTINGS_CHANGED, AccessEventV1

TYPES = frozenset({WORKSPACE_CREATED, WORKSPACE_SETTINGS_CHANGED})


def team_setting(event: AccessEventV1) -> tuple[str, str | None] | None:
    """(workspace, address) when `event` sets the team address, else None."""
    if event.type == WORKSPACE_CREATED:
        return event.workspace, event.data.settings.team_notify_email
    if event.type == WORKSPACE_SETTINGS_CHANGED and "team_notify_email" in event.data.changes.model_fields_set:
        return event.workspace, event.data.changes.team_notify_email
    return None


async def remember(conn: asyncpg.Connection, settings: list[tuple[str, str | None]]) -> None:
    if settings:
        await conn.execute(
            """
            INSERT INTO notifier_workspaces (workspace, team_notify_email)
            SELECT * FROM unnest($1::text[], $2::text[])
            ON CONFLICT (workspace) DO UPDATE SET team_notify_email = excluded.team_notify_email, updated_at = now()
            """,
            [s[0] for s in settings], [s[1] for s in settings],
        )


async def addresses(conn: asyncpg.Connection | asyncpg.Pool, workspaces: set[str]) -> dict[str, str]:
    if not workspaces:
        return {}
    rows = await conn.fetch(
        "SELECT workspace, team_notify_email FROM notifier_workspaces"
        " WHERE workspace = ANY($1::text[]) AND team_notify_email IS NOT NULL",
        list(workspaces),
    )
    return {r["workspace"]: r["team_notify_email"] for r in rows}


def event_team_address(event: AccessEventV1) -> str | None:
    sender = getattr(event.data, "sender", None)
    return getattr(sender, "team_notify_email", None)
