"""Auto-invite's rules without I/O: the share contract, the candidate, the trip's memory of shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts.shares import Traveler, TripShareV1
from services.invite_service.commands.auto_invite import candidate
from services.invite_service.domain import ids
from services.invite_service.domain.trip import Trip

SYSTEM = {"kind": "system", "reason": "first invoice share"}


def _share_body(**changes):
    return {"event_id": str(uuid.uuid4()), "workspace": "pride", "trip_id": "T-1", "kind": "invoice",
            "occurred_at": "2026-11-29T10:00:00Z", "travelers": [{"name": "Ana", "email": "ana@example.com"}]} | changes


def test_fields_added_by_producers_are_ignored():
    body = _share_body(colour="teal")
    body["travelers"][0]["loyalty"] = "gold"
    share = TripShareV1.model_validate(body)
    assert share.travelers[0].email == "ana@example.com" and share.key == b"T-1"
    assert share.occurred_at.tzinfo is not None


@pytest.mark.parametrize("change", [{"kind": "receipt"}, {"event_id": "nope"}, {"trip_id": ""}, {"workspace": None}])
def test_what_v1_does_not_allow_is_refused(change):
    with pytest.raises(ValidationError):
        TripShareV1.model_validate(_share_body(**change))


def test_the_candidate_is_the_primary_with_an_email_else_the_first_with_one():
    ana, ben = Traveler(name="Ana", email="ana@example.com"), Traveler(name="Ben", email="ben@example.com", primary=True)
    assert candidate([ana, ben]) is ben
    lead_without_email = Traveler(name="Lead", primary=True)
    broken = Traveler(name="Carl", email="not-an-email")
    assert candidate([lead_without_email, broken, ana, ben.model_copy(update={"primary": False})]) is ana
    assert candidate([lead_without_email, broken]) is None
    assert candidate([]) is None


def test_a_trip_remembers_every_share_and_decides_once():
    first = {"event_id": str(uuid.uuid4()), "kind": "invoice", "shared_by": None,
             "occurred_at": datetime.now(UTC).isoformat()}
    trip = Trip(workspace="pride", trip_id="T-1", share=first, travelers=[], actor=SYSTEM,
                auto_invite={"outcome": "skipped", "reason": "no_candidate"})
    assert trip.id == ids.trip_id("pride", "T-1") != ids.trip_id("other", "T-1")
    assert not trip.record_share(share=first, travelers=[], actor=SYSTEM)  # a redelivery
    later = first | {"event_id": str(uuid.uuid4()), "kind": "proposal"}
    assert trip.record_share(share=later, travelers=[], actor=SYSTEM)
    assert not trip.record_share(share=later, travelers=[], actor=SYSTEM)
    assert trip.version == 2 and trip.auto_invite["reason"] == "no_candidate"


def test_the_documents_give_upstream_teams_the_share_contract():
    import json
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    asyncapi = json.loads((docs / "asyncapi.json").read_text())
    [channel] = [c for c in asyncapi["channels"].values() if c["address"] == "trips.shares.v1"]
    [message] = [asyncapi["components"]["messages"][m["$ref"].rsplit("/", 1)[1]] for m in channel["messages"].values()]
    assert message["payload"]["$ref"].endswith("/TripShareV1")
    schema = json.loads((docs / "schemas" / "trip-share-v1.json").read_text())
    assert {"event_id", "workspace", "trip_id", "kind", "occurred_at"} <= set(schema["required"])
    assert schema["properties"]["kind"]["enum"] == ["invoice", "proposal"]
    assert (docs / "openapi.json").read_text().count("/v1/workspaces/{ws}/trips/{trip_id}/travelers") == 1


def test_publish_share_reads_travelers_as_people_type_them():
    from deploy.publish_share import parse_traveler

    assert parse_traveler("Ana Lima <ana@example.com>", primary=True) == Traveler(
        name="Ana Lima", email="ana@example.com", primary=True)
    assert parse_traveler("ben@example.com") == Traveler(email="ben@example.com")
    assert parse_traveler("Cy") == Traveler(name="Cy")
