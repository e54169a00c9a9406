"""The Kafka contracts read what newer producers write (fields added within v1) and
refuse what is not theirs."""

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts import AccessEventV1, DeliveryOutcomeV1


def envelope(**overrides):
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "InviteSent",
        "workspace": "pride",
        "account_id": str(uuid.uuid4()),
        "aggregate_id": str(uuid.uuid4()),
        "aggregate_version": 1,
        "position": 7,
        "occurred_at": datetime.now(UTC).isoformat(),
        "actor": {"kind": "staff", "id": "staff-1", "reason": None},
        "data": {"email": "ana@example.com"},
    }
    return {**body, **overrides}


def test_a_field_added_by_a_newer_producer_is_ignored():
    event = AccessEventV1.model_validate(envelope(trace_id="abc123"))
    assert event.type == "InviteSent" and not hasattr(event, "trace_id")
    outcome = DeliveryOutcomeV1.model_validate({
        "delivery_id": str(uuid.uuid4()), "event_id": str(uuid.uuid4()), "account_id": str(uuid.uuid4()),
        "workspace": "pride", "channel": "email", "provider": "smtp", "status": "sent", "attempt": 1,
        "error": None, "at": datetime.now(UTC).isoformat(), "provider_message_id": "new-in-v1.1",
    })
    assert outcome.status == "sent"


@pytest.mark.parametrize(
    "broken",
    [{"aggregate_version": 0}, {"schema_version": 2}, {"actor": {"kind": "robot"}}, {"event_id": "not-a-uuid"}],
    ids=["version-0", "schema-v2", "unknown-actor", "bad-id"],
)
def test_what_is_not_a_v1_access_event_is_refused(broken):
    with pytest.raises(ValidationError):
        AccessEventV1.model_validate(envelope(**broken))


def test_the_key_keeps_an_accounts_events_on_one_partition():
    event = AccessEventV1.model_validate(envelope())
    assert event.key == str(event.account_id).encode()
    workspace_event = AccessEventV1.model_validate(envelope(account_id=None, type="WorkspaceCreated"))
    assert workspace_event.key == str(workspace_event.aggregate_id).encode()
