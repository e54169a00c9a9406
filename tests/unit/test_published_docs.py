"""The committed OpenAPI, AsyncAPI and JSON Schema documents are what the code generates,
and they carry the paths and topics API.md promises."""

import json
from pathlib import Path

from contracts.access import ENVELOPES
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


def test_every_access_event_type_has_a_typed_payload_in_the_documents():
    asyncapi = json.loads((DOCS / "asyncapi.json").read_text())
    schemas = asyncapi["components"]["schemas"]
    relay = asyncapi["components"]["messages"]["relay-access-events:Message"]["payload"]["$ref"].rsplit("/", 1)[1]
    published = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas[relay]["oneOf"]}
    assert published == {cls.__name__ for cls in ENVELOPES.values()}
    for event_type, cls in ENVELOPES.items():
        assert schemas[cls.__name__]["properties"]["type"]["const"] == event_type
        data_model = schemas[cls.__name__]["properties"]["data"]["$ref"].rsplit("/", 1)[1]
        assert schemas[data_model]["properties"], event_type
    exported = {json.loads(path.read_text())["properties"]["type"].get("const")
                for path in (DOCS / "schemas").glob("access-event-v1.*.json")}
    assert exported == set(ENVELOPES)


def test_errors_are_documented_as_problem_details_with_their_codes():
    openapi = json.loads((DOCS / "openapi.json").read_text())
    invite = openapi["paths"]["/v1/workspaces/{ws}/invitations"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "415", "422"} <= set(invite)
    claim = openapi["paths"]["/portal/{ws}/claim/{token}"]["post"]["responses"]
    documented = json.dumps([invite, claim])
    # The error codes of API.md that this API answers today.
    for code in ("email_required", "invalid_email", "invalid_phone", "duplicate_email", "portal_disabled",
                 "plan_required", "forbidden_role", "link_invalid"):
        assert f"`{code}`" in documented, code
    for path in openapi["paths"].values():
        for operation in path.values():
            # A page route may answer its errors as a page too.
            page = "text/html" in operation["responses"].get("200", {}).get("content", {})
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                as_page = page and "text/html" in content
                if status.startswith("4") and "application/problem+json" not in content and not as_page:
                    raise AssertionError(f"{status} of {operation.get('summary')} is not documented as problem details")
    assert "ProblemDetails" in openapi["components"]["schemas"]


def _openapi() -> dict:
    return json.loads((DOCS / "openapi.json").read_text())


def test_the_portal_session_routes_document_their_401():
    paths = _openapi()["paths"]
    session = paths["/portal/{ws}/session"]["get"]["responses"]
    assert "`not_signed_in`" in session["401"]["description"]
    assert "application/problem+json" in session["401"]["content"]
    home = paths["/portal/{ws}/"]["get"]["responses"]
    assert "text/html" in home["401"]["content"] and "text/html" in home["200"]["content"]


def test_an_invitation_requires_email_in_the_schema():
    invitation = _openapi()["components"]["schemas"]["InvitationIn"]
    assert "email" in invitation["required"]
    assert "default" not in invitation["properties"]["email"]


def test_the_status_list_says_resource_type_and_resource_id_go_together():
    parameters = {p["name"]: p for p in _openapi()["paths"]["/v1/workspaces/{ws}/accounts"]["get"]["parameters"]}
    for name, other in (("resource_type", "resource_id"), ("resource_id", "resource_type")):
        description = parameters[name]["description"]
        assert other in description and "`invalid_filter`" in description, description


def test_one_code_for_a_body_too_large():
    document = (DOCS / "openapi.json").read_text()
    assert "`body_too_large`" in document and "payload_too_large" not in document


async def test_a_413_from_the_framework_answers_body_too_large():
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    from services.invite_service.api.errors import handle_http_error

    request = Request({"type": "http", "method": "POST", "path": "/v1/x", "headers": [], "query_string": b""})
    response = await handle_http_error(request, HTTPException(413))
    assert response.status_code == 413 and json.loads(response.body)["code"] == "body_too_large"
