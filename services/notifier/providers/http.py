"""What the HTTP providers share: one kept client each, and reading a provider's error body."""

from __future__ import annotations

from typing import Any

import httpx

# Connections are kept and reused between sends (TLS handshakes cost more than the request).
LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=20, keepalive_expiry=30.0)


def client(base_url: str, timeout: float, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, limits=LIMITS, **options)


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or {} when it is not one (a proxy's HTML error page)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def network_reason(exc: httpx.HTTPError) -> str:
    # The exception's text names the URL at most; request headers (tokens) are never in it.
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_transient_status(status: int) -> bool:
    """Rate limited or the provider's own trouble: worth another try later. So is an answer
    no provider documents for a send (a redirect, a 2xx without the expected body): a
    proxy in the way, most likely, and not something this message did."""
    return status == 429 or status >= 500 or status < 400
