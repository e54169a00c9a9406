"""The write side's HTTP app: `create_app(settings)` builds the staff API, the portal and
health; nothing connects at import time. The API process mounts the read side's query
router beside it (deploy/api_app.py); this package never imports `projections`."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from datetime import timedelta

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from services.common.database import create_pool, eventsourcing_env
from services.common.problems import problem_responses, problem_schemas
from services.common.settings import ApiSettings
from services.invite_service.api import health, webhooks
from services.invite_service.api.body_limits import BodyLimits
from services.invite_service.api.edge import install_edge
from services.invite_service.api.errors import install_error_handlers
from services.invite_service.api.idempotency import install_idempotency
from services.invite_service.api.portal import claims, session, sign_in
from services.invite_service.api.rate_limits import FailureLimiter
from services.invite_service.api.readiness import BrokerProbe
from services.invite_service.api.staff import accounts, history, invitations, workspaces
from services.invite_service.api.staff import sessions as staff_sessions
from services.invite_service.application import PortalAccess
from services.invite_service.signin.throttle import Throttle

log = logging.getLogger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Reads of the event store and portal pages run in worker threads; allow more than
        # anyio's default 40 so a burst of them does not queue behind each other.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        app.state.portal_access = await asyncio.to_thread(
            PortalAccess,
            eventsourcing_env(settings.database_url),
            secret_key=settings.porchlight_secret_key.get_secret_value().encode(),
            commit_batch_max=settings.commit_batch_max,
        )
        app.state.read_pool = await create_pool(settings.database_url, max_size=10)
        app.state.throttle = Throttle(app.state.read_pool)
        app.state.portal_access.allow_http_portal_url = settings.allow_http_portal_url
        app.state.portal_access.public_https = settings.public_base_url.startswith("https://")
        app.state.portal_access.session_absolute_lifetime = timedelta(days=settings.session_absolute_days)
        log.info("api ready on %s:%s", settings.host, settings.port)
        try:
            yield
        finally:
            await app.state.read_pool.close()
            app.state.portal_access.close()

    app = FastAPIOffline(  # /docs and /redoc with their scripts from the installed package, not a CDN
        title="Porchlight",
        version="0.1.0",
        summary="Invitations and access for customer portals",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
    )
    # What the dependencies in deps.py (and services/common/deps.py) resolve; routes never read app.state.
    app.state.settings = settings
    app.state.staff_jwt_secret = settings.staff_jwt_secret.get_secret_value()
    app.state.claim_failures = FailureLimiter("claim", settings.portal_failed_claims_per_minute)
    app.state.broker_probe = BrokerProbe(settings.kafka_bootstrap_servers)
    install_error_handlers(app)
    install_idempotency(app)
    app.add_middleware(BodyLimits, max_body_bytes=settings.max_body_bytes, max_bulk_body_bytes=settings.max_bulk_body_bytes)
    install_edge(app, settings)  # after every other middleware: it must run first
    for module in (health, workspaces, invitations, accounts, history, claims, session, sign_in, staff_sessions):
        app.include_router(module.router)
    app.include_router(webhooks.router)  # Postmark's delivery and bounce reports (services/notifier/receipts.py)
    _document_problems(app)
    return app


def _document_problems(app: FastAPI) -> None:
    """Routes name their errors as application/problem+json with the ProblemDetails schema;
    put that schema in the document's components, and make FastAPI's own 422 entries (which
    describe its default body, not ours) say the same. Runs when the document is first
    asked for, so it also covers routers mounted after `create_app`."""
    generate = app.openapi
    fastapi_422 = "#/components/schemas/HTTPValidationError"

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            for operation in (op for path in schema["paths"].values() for op in path.values()):
                response = operation.get("responses", {}).get("422")
                if response and response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref") == fastapi_422:
                    operation["responses"]["422"] = problem_responses({422: "Invalid path or query (`validation_error`)"})[422]
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            components.update(problem_schemas())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
