"""Rate limits key on the client's address, which `X-Forwarded-For` sets only when the peer is a
trusted proxy; in the app (any server, tests) and in uvicorn alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from services.common.settings import ApiSettings
from services.invite_service.api.app import create_app
from services.invite_service.api.edge import server_options
from tests.helpers import unique
from tests.integration.live_server import live_server

LIMIT = 3  # invalid links one address may open a minute
JSON = {"Accept": "application/json"}


def _settings(base_env: dict[str, str], **overrides) -> ApiSettings:
    env = {k.lower(): v for k, v in base_env.items()}
    return ApiSettings(**env, portal_failed_claims_per_minute=LIMIT, **overrides)


@asynccontextmanager
async def in_process(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app without a server; httpx's transport connects from 127.0.0.1."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@asynccontextmanager
async def behind_uvicorn(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind uvicorn with the options `porchlight api` gives it; we connect from 127.0.0.1."""
    async with live_server(create_app(settings), **server_options(settings)) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            yield client


async def _open_invalid_link(client: httpx.AsyncClient, forwarded_for: str) -> int:
    headers = {**JSON, "X-Forwarded-For": forwarded_for}
    response = await client.get(f"/portal/{unique('ws')}/claim/not-a-link", headers=headers)
    return response.status_code


async def _rotating_addresses_are_still_limited(client: httpx.AsyncClient) -> None:
    statuses = [await _open_invalid_link(client, f"198.51.100.{i}") for i in range(LIMIT + 2)]
    assert statuses == [410] * LIMIT + [429, 429]


async def _the_forwarded_address_is_the_key(client: httpx.AsyncClient) -> None:
    assert [await _open_invalid_link(client, "198.51.100.7") for _ in range(LIMIT + 1)] == [410] * LIMIT + [429]
    assert await _open_invalid_link(client, "198.51.100.8") == 410
    # The client's own entries come first; the right-most address not a trusted proxy is the client.
    chain = [await _open_invalid_link(client, f"192.0.2.{i}, 198.51.100.9, 10.1.2.3") for i in range(LIMIT + 1)]
    assert chain == [410] * LIMIT + [429]


async def test_without_trusted_proxies_x_forwarded_for_is_ignored(base_env):
    async with in_process(_settings(base_env)) as client:
        await _rotating_addresses_are_still_limited(client)


async def test_from_a_trusted_proxy_the_forwarded_address_is_used(base_env):
    async with in_process(_settings(base_env, trusted_proxies="127.0.0.1, 10.0.0.0/8")) as client:
        await _the_forwarded_address_is_the_key(client)


async def test_uvicorn_does_not_believe_loopback_by_default(base_env):
    async with behind_uvicorn(_settings(base_env)) as client:
        await _rotating_addresses_are_still_limited(client)


async def test_uvicorn_behind_a_trusted_proxy(base_env):
    async with behind_uvicorn(_settings(base_env, trusted_proxies="127.0.0.1,10.0.0.0/8")) as client:
        await _the_forwarded_address_is_the_key(client)
