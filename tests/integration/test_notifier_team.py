"""Team notices: the workspace's team address, kept from its settings events, receives the notice
of an event that carries no sender (an invitation accepted)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from contracts.access import parse_access_event
from tests.helpers import unique
from tests.integration.test_notifier import notifier_settings, publish, running

pytestmark = pytest.mark.timeout(90)


def envelope(ws: str, type_: str, data: dict, *, account_id: uuid.UUID | None = None, version: int = 1):
    aggregate_id = account_id or uuid.uuid4()
    return parse_access_event({
        "event_id": str(uuid.uuid4()), "type": type_, "workspace": ws,
        "account_id": str(account_id) if account_id else None, "aggregate_id": str(aggregate_id),
        "aggregate_version": version, "position": 1, "occurred_at": datetime.now(timezone.utc).isoformat(),
        "actor": {"kind": "staff", "id": "staff-1"}, "data": data,
    })


async def test_the_team_hears_of_an_accepted_invitation_at_the_address_its_settings_name(
    base_env, smtp_server, kafka_bootstrap, topic_names
):
    ws = unique("ws")
    old, team = f"{unique('old')}@example.com", f"{unique('team')}@example.com"
    created = envelope(ws, "WorkspaceCreated", {"slug": ws, "settings": {"name": "Pride Travelers",
                                                                        "team_notify_email": old}})
    changed = envelope(ws, "WorkspaceSettingsChanged", {"changes": {"team_notify_email": team}}, version=2)
    account_id = uuid.uuid4()
    activated = envelope(ws, "AccountActivated", {"invitation_id": str(uuid.uuid4()), "email": "ana@example.com",
                                                  "name": "Ana Lima"}, account_id=account_id, version=2)
    async with running(notifier_settings(base_env, smtp_server.port)):
        # Workspace events are keyed by the workspace; publish them first, then the account's.
        await publish(kafka_bootstrap, topic_names["access"], created, changed)
        await publish(kafka_bootstrap, topic_names["access"], activated)
        [notice] = await smtp_server.wait_for(team)
    assert "Ana Lima" in notice.part("plain")
    assert not smtp_server.recorder.to(old)
