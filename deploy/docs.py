"""The documents host apps and upstream teams code against, generated from the code.

    porchlight docs [--out docs]

writes `openapi.json` (the HTTP API), `asyncapi.json` (every topic Porchlight publishes
or consumes, from the FastStream handlers and the relay's declared publisher) and
`schemas/*.json` (JSON Schema of each `contracts` model: the access envelope, one typed
envelope per access event type, the delivery outcome, the audit chain's head, the inbound trip share). A unit test regenerates them
and fails when the committed copies have drifted from the code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from contracts import ENVELOPES, AccessEventV1, DeliveryOutcomeV1, KnownAccessEventV1, TripShareV1
from contracts.audit import AuditHeadV1

# Only for building documents: nothing connects, and these values are never used as secrets.
_DOC_ENV = {
    "database_url": "postgresql://docs@localhost/docs",
    "kafka_bootstrap_servers": "localhost:9092",
    "porchlight_secret_key": "d" * 32,
    "staff_jwt_secret": "d" * 32,
}


def _settings(cls):
    return cls(**{k: v for k, v in _DOC_ENV.items() if k in cls.model_fields})


def openapi() -> dict[str, Any]:
    from deploy.api_app import create_api
    from services.common.settings import ApiSettings

    return create_api(_settings(ApiSettings)).openapi()


def asyncapi() -> dict[str, Any]:
    from faststream.kafka import KafkaBroker
    from faststream.specification import AsyncAPI

    from projections.consumer import create_projector
    from services.autoinvite.consumer import create_autoinvite
    from services.common.settings import AutoinviteSettings, NotifierSettings, ProjectorSettings, RelaySettings
    from services.notifier.main import create_notifier

    relay_settings = _settings(RelaySettings)
    relay = KafkaBroker(relay_settings.kafka_bootstrap_servers, description="The relay (services/invite_service/relay.py)")
    relay.publisher(
        relay_settings.access_topic,
        title="relay-access-events",
        description="Every domain event of the write side, in notification-log order per account; key: account id;"
        " header `type`: the event type",
        schema=KnownAccessEventV1,
    )
    relay.publisher(
        relay_settings.audit_topic,
        title="relay-audit-heads",
        description="The head of the audit chain over the event store (its position and hash), every few seconds"
        " when it moved, from the chain follower in the relay process; key: `log`. A copy outside the database"
        " that `porchlight audit verify` checks the recomputed chain against",
        schema=AuditHeadV1,
    )
    notifier, _ = create_notifier(_settings(NotifierSettings))
    projector = create_projector(_settings(ProjectorSettings), pool=None)
    # trips.shares.v1, inbound. Documented from the one-share subscriber, whose typed handler
    # gives the topic its TripShareV1 payload; the default batch subscriber reads the same messages.
    autoinvite = create_autoinvite(_settings(AutoinviteSettings).model_copy(update={"autoinvite_batch_max": 1}), app=None)
    spec = AsyncAPI(relay, notifier, *projector, autoinvite, title="Porchlight", version="0.1.0",
                    description="Topics of the Porchlight invitation and access service")
    return spec.to_specification().to_jsonable()


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def json_schemas() -> dict[str, dict[str, Any]]:
    schemas = {"access-event-v1.json": AccessEventV1.model_json_schema()}
    for event_type, envelope in ENVELOPES.items():  # access-event-v1.invite-sent.json, ...
        schemas[f"access-event-v1.{_kebab(event_type)}.json"] = envelope.model_json_schema()
    schemas["delivery-outcome-v1.json"] = DeliveryOutcomeV1.model_json_schema()
    schemas["audit-head-v1.json"] = AuditHeadV1.model_json_schema()
    schemas["trip-share-v1.json"] = TripShareV1.model_json_schema()  # for upstream producers to validate against
    return schemas


def render_all() -> dict[str, str]:
    """Relative path → file content, for writing or for comparing with the committed copies."""
    files = {"openapi.json": openapi(), "asyncapi.json": asyncapi()}
    files.update({f"schemas/{name}": schema for name, schema in json_schemas().items()})
    return {path: json.dumps(doc, indent=2, sort_keys=True) + "\n" for path, doc in files.items()}


def write_all(out: Path) -> list[Path]:
    written = []
    for rel, content in render_all().items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        written.append(path)
    return written
