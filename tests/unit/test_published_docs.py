"""The committed OpenAPI, AsyncAPI and JSON Schema documents are what the code generates,
and they carry the paths and topics API.md promises."""

import json
from pathlib import Path

from deploy.docs import render_all

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_committed_documents_match_the_code():
    stale = [rel for rel, content in render_all().items() if not (DOCS / rel).exists() or (DOCS / rel).read_text() != content]
    assert not stale, f"regenerate with `porchlight docs`: {stale}"


def test_documents_name_the_contract_of_api_md():
    openapi = json.loads((DOCS / "openapi.json").read_text())
    for path in ("/v1/workspaces/{ws}", "/v1/workspaces/{ws}/invitations", "/v1/workspaces/{ws}/accounts",
                 "/v1/workspaces/{ws}/accounts/{account_id}", "/portal/{ws}/claim/{token}", "/portal/{ws}/session",
                 "/healthz", "/readyz"):
        assert path in openapi["paths"], path
    asyncapi = json.loads((DOCS / "asyncapi.json").read_text())
    addresses = {channel["address"] for channel in asyncapi["channels"].values()}
    assert {"porchlight.access.v1", "porchlight.deliveries.v1"} <= addresses
    envelope = json.loads((DOCS / "schemas" / "access-event-v1.json").read_text())
    assert {"event_id", "type", "workspace", "account_id", "aggregate_id", "aggregate_version", "position",
            "occurred_at", "actor", "data"} <= set(envelope["required"]) | set(envelope["properties"])
