"""What the HTTP edge believes and refuses, for the app and for the server in front of it.

* The client's address. `X-Forwarded-For` (and `-Proto`) is believed only from
  TRUSTED_PROXIES, and the client is the right-most address not among them; rate limits key
  on the result (`request.client`). uvicorn on its own believes 127.0.0.1, so anyone on the
  host could claim a fresh address per request (200 of 200 got past a 429). The app resolves
  the address itself, so it holds under any server and in tests; `server_options` tells
  uvicorn the same list.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from services.common.settings import ApiSettings


def install_edge(app: FastAPI, settings: ApiSettings) -> None:
    """Register after every other middleware: the last registered runs first, and the
    address must be resolved before anything (a rate limit, a log line) reads it."""
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)


def server_options(settings: ApiSettings) -> dict[str, Any]:
    """uvicorn's own options to match; an empty list also stops it reading FORWARDED_ALLOW_IPS."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": list(settings.trusted_proxies),
    }
