"""Composition root of the API process: `create_app(settings)` builds everything; nothing
connects at import time."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from services.common.database import create_pool, eventsourcing_env
from services.common.problems import problem_responses, problem_schemas
from services.common.settings import ApiSettings
from services.invite_service.api import health, invitations, portal, workspaces
from services.invite_service.api.body_limits import BodyLimits
from services.invite_service.api.edge import install_edge
from services.invite_service.api.rate_limits import FailureLimiter
from services.invite_service.api.errors import install_error_handlers
from services.invite_service.application import PortalAccess

log = logging.getLogger(__name__)


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Commands wait on the event store in worker threads; while one thread flushes a
        # group commit the others queue behind it, so allow more than anyio's default 40.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        app.state.settings = settings
        app.state.staff_jwt_secret = settings.staff_jwt_secret.get_secret_value()
        app.state.portal_access = await asyncio.to_thread(
            PortalAccess,
            eventsourcing_env(settings.database_url),
            secret_key=settings.porchlight_secret_key.get_secret_value().encode(),
            commit_batch_max=settings.commit_batch_max,
        )
        app.state.read_pool = await create_pool(settings.database_url, max_size=10)
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
    install_error_handlers(app)
    app.state.claim_failures = FailureLimiter("claim", settings.portal_failed_claims_per_minute)
    app.add_middleware(BodyLimits, max_body_bytes=settings.max_body_bytes)
    install_edge(app, settings)  # after every other middleware: it must run first
    for module in (health, workspaces, invitations, portal):
        app.include_router(module.router)
    app.add_route("/metrics", _metrics, include_in_schema=False)
    _include_read_side(app)
    _document_problems(app)
    return app


def _document_problems(app: FastAPI) -> None:
    """Routes name their errors as application/problem+json with the ProblemDetails schema;
    put that schema in the document's components, and make FastAPI's own 422 entries (which
    describe its default body, not ours) say the same."""
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


def create_app_from_env() -> FastAPI:
    """For `porchlight api --workers N`: each worker process reads the same environment."""
    from services.common.logging import configure_logging

    settings = ApiSettings()
    configure_logging(settings.log_level, settings.log_format, "api")
    return create_app(settings)


async def _metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _include_read_side(app: FastAPI) -> None:
    # The query API belongs to the read side; this process serves it from the projection tables.
    from projections.query_api import router as query_router

    app.include_router(query_router)
