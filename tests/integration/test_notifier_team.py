"""Team notices: the workspace's team address, kept from its settings events, receives the notice
of an event that carries no sender (an invitation accepted)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from contracts.access import parse_access_event
from tests.helpers import poll_until, unique
from tests.integration.test_notifier import notifier_settings, publish, running

pytestmark = pytest.mark.timeout(90)


def envelope(ws: str, type_: str, data: dict, *, account_id: uuid.UUID | None = None, version: int = 1,
             aggregate_id: uuid.UUID | None = None):
    aggregate_id = aggregate_id or account_id or uuid.uuid4()
    return parse_access_event({
        "event_id": str(uuid.uuid4()), "type": type_, "workspace": ws,
        "account_id": str(account_id) if account_id else None, "aggregate_id": str(aggregate_id),
        "aggregate_version": version, "position": 1, "occurred_at": datetime.now(timezone.utc).isoformat(),
        "actor": {"kind": "staff", "id": "staff-1"}, "data": data,
    })


async def test_the_team_hears_of_an_accepted_invitation_at_the_address_its_settings_name(
    base_env, smtp_server, kafka_bootstrap, topic_names, pg_pool
):
    ws = unique("ws")
    old, team = f"{unique('old')}@example.com", f"{unique('team')}@example.com"
    workspace_id = uuid.uuid4()  # one aggregate: its events share a key and a partition, in order
    created = envelope(ws, "WorkspaceCreated", {"slug": ws, "settings": {"name": "Pride Travelers",
                                                                        "team_notify_email": old}},
                       aggregate_id=workspace_id)
    changed = envelope(ws, "WorkspaceSettingsChanged", {"changes": {"team_notify_email": team}}, version=2,
                       aggregate_id=workspace_id)
    account_id = uuid.uuid4()
    activated = envelope(ws, "AccountActivated", {"invitation_id": str(uuid.uuid4()), "email": "ana@example.com",
                                                  "name": "Ana Lima"}, account_id=account_id, version=2)
    async with running(notifier_settings(base_env, smtp_server.port)):
        # Workspace events are keyed by the workspace, the account's by the account: different
        # partitions, read in no set order. A workspace's settings precede its clients' claims by
        # far in life; here the claim is published once the notifier has taken the change in.
        await publish(kafka_bootstrap, topic_names["access"], created, changed)

        async def team_address():
            return await pg_pool.fetchval(
                "SELECT team_notify_email FROM notifier_workspaces WHERE workspace = $1", ws
            )

        assert await poll_until(lambda: _equals(team_address, team), timeout=30, what="the changed team address") is True
        await publish(kafka_bootstrap, topic_names["access"], activated)
        [notice] = await smtp_server.wait_for(team)
    assert "Ana Lima" in notice.part("plain")
    assert not smtp_server.recorder.to(old)


async def _equals(read, expected) -> bool | None:
    return True if await read() == expected else None
