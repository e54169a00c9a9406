"""Composition root of the API process: the write side's app (staff API, portal, health)
with the read side's query router mounted beside it.

This is the one place the two sides meet: `services.invite_service.api` never imports
`projections`, and `projections.query_api` never imports the write side. Both take their
shared dependencies (staff claims, the asyncpg pool) from services/common/deps.py, which
the write side's `create_app` provides for the whole app.
"""

from __future__ import annotations

from fastapi import FastAPI

from projections.query_api import router as query_router
from projections.query_api import trips_router
from services.common.settings import ApiSettings
from services.invite_service.api import create_app
from services.invite_service.api.staff import gmail
from services.invite_service.point_in_time import account_as_of


def create_api(settings: ApiSettings) -> FastAPI:
    app = create_app(settings)
    app.include_router(query_router)  # /v1/workspaces/{ws}/accounts..., beside the staff command routes
    app.include_router(trips_router)  # /v1/workspaces/{ws}/trips/{trip_id}/travelers
    app.include_router(gmail.router)  # /v1/workspaces/{ws}/staff/{staff_id}/gmail
    # The read route's `?as_of=T` answers from the event store, through the write side's replay.
    app.state.account_as_of = lambda ws, account_id, at: account_as_of(app.state.portal_access, ws, account_id, at)
    return app


def create_api_from_env() -> FastAPI:
    """For `porchlight api --workers N`: each worker process reads the same environment."""
    from services.common.logging import configure_logging
    from services.common.metrics import serve_only

    settings = ApiSettings()
    configure_logging(settings.log_level, settings.log_format, "api")
    serve_only("api")  # each worker process serves the API's own series, as a single-process api does
    return create_api(settings)
