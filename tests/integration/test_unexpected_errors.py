"""An unhandled error is answered with a 500 problem and logged once, shortly, without the
request's secrets: no locals, no headers, no cookies, no token-bearing path."""

from __future__ import annotations

import io
import logging
from uuid import uuid4

import httpx
import pytest
import structlog

from services.common import tokens
from services.common.logging import configure_logging
from services.common.settings import ApiSettings
from services.invite_service.api.app import create_app
from services.invite_service.application import PortalAccess
from tests.helpers import unique
from tests.integration.live_server import live_server

BEARER = "staff.jwt-" + "b" * 40
COOKIE = "session-" + "c" * 40


@pytest.fixture
def log_output():
    """What the process's own logging setup writes; the global setup is restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, structlog.get_config()
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    structlog.configure(**saved[2])
    structlog.contextvars.clear_contextvars()


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_an_unhandled_error_is_logged_once_without_secrets(base_env, log_output, monkeypatch, log_format):
    configure_logging("INFO", log_format, "api", stream=log_output)

    def fail(self, slug: str, token: str):
        raise RuntimeError("the event store went away")

    monkeypatch.setattr(PortalAccess, "check_claim", fail)
    claim_token = tokens.make_token(b"k" * 32, tokens.CLAIM, uuid4(), tokens.new_nonce())
    app = create_app(ApiSettings(**{k.lower(): v for k, v in base_env.items()}))
    async with live_server(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get(
            f"/portal/{unique('ws')}/claim/{claim_token}",
            headers={"Authorization": f"Bearer {BEARER}", "Cookie": f"porchlight_session={COOKIE}"},
        )
    assert response.status_code == 500 and response.json()["code"] == "internal_error"

    logged = log_output.getvalue()
    for secret in (BEARER, COOKIE, claim_token):
        assert secret not in logged
    assert logged.count("unhandled error") == 1, logged
    assert "Exception in ASGI application" not in logged
    assert "/portal/{ws}/claim/{token}" in logged
    assert "RuntimeError" in logged and "the event store went away" in logged
    assert len(logged) < 8_000, f"{len(logged)} characters logged for one failed request"
