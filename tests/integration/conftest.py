"""The API in-process (real PostgreSQL and broker behind it) and staff tokens for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from deploy.api_app import create_api
from services.common.settings import ApiSettings
from services.common.staff_auth import make_staff_token
from tests.conftest import STAFF_JWT_SECRET
from tests.helpers import unique


@asynccontextmanager
async def serve(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The API process's app (write side and query router), started, behind an HTTP client."""
    app = create_api(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def api_settings(base_env: dict[str, str]) -> ApiSettings:
    return ApiSettings(**{k.lower(): v for k, v in base_env.items()})


@pytest.fixture
async def api(api_settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(api_settings) as client:
        yield client


@pytest.fixture
def staff_token() -> Callable[..., str]:
    def make(ws: str, role: str = "owner", sub: str = "staff-1", name: str | None = None) -> str:
        return make_staff_token(STAFF_JWT_SECRET, sub=sub, ws=ws, role=role, name=name)

    return make


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def pro_workspace(api: httpx.AsyncClient, staff_token) -> str:
    """A fresh workspace on the Pro plan with the portal on."""
    ws = unique("ws")
    response = await api.put(
        f"/v1/workspaces/{ws}",
        headers=auth(staff_token(ws)),
        json={"name": "Pride Travelers", "plan": "pro", "portal_enabled": True,
              "branding": {"sender_name": "Pride Travelers", "brand_color": "#0B7A75"}},
    )
    assert response.status_code == 201, response.text
    return ws
