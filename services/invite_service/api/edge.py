"""What the HTTP edge believes and refuses, for the app and for the server in front of it.

* The client's address. `X-Forwarded-For` (and `-Proto`) is believed only from
  TRUSTED_PROXIES, and the client is the right-most address not among them; rate limits key
  on the result (`request.client`). uvicorn on its own believes 127.0.0.1, so anyone on the
  host could claim a fresh address per request (200 of 200 got past a 429). The app resolves
  the address itself, so it holds under any server and in tests; `server_options` tells
  uvicorn the same list.
* Header size. The request line and headers together may take MAX_HEADER_BYTES; more is
  refused with 431 `headers_too_large`. uvicorn's httptools parser has no limit of its own
  and h11's applies only to what is still incomplete in its buffer, so the app checks.
* Security headers on every response: see security_headers.py.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.common.problems import Problem, problem_response
from services.common.settings import ApiSettings
from services.invite_service.api.security_headers import SecurityHeaders


def install_edge(app: FastAPI, settings: ApiSettings) -> None:
    """Register after every other middleware: the last registered runs first, and the
    address must be resolved before anything (a rate limit, a log line) reads it."""
    app.add_middleware(HeaderLimits, max_header_bytes=settings.max_header_bytes)
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)


def server_options(settings: ApiSettings) -> dict[str, Any]:
    """uvicorn's own options to match; an empty list also stops it reading FORWARDED_ALLOW_IPS."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


def header_bytes(scope: Scope) -> int:
    """About what the request line and headers took on the wire."""
    target = scope.get("raw_path") or scope["path"].encode()
    return len(target) + len(scope.get("query_string", b"")) + sum(len(k) + len(v) + 4 for k, v in scope["headers"])


class HeaderLimits:
    def __init__(self, app: ASGIApp, max_header_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and header_bytes(scope) > self.max_header_bytes:
            problem = Problem(
                431,
                "headers_too_large",
                "Request headers too large",
                f"The request line and headers are larger than {self.max_header_bytes} bytes.",
                headers={"Connection": "close"},
            )
            await problem_response(problem, Request(scope))(scope, receive, send)
            return
        await self.app(scope, receive, send)
