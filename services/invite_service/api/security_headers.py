"""Headers that keep browsers from misusing what the API answers.

Every response: `X-Content-Type-Options: nosniff`, so nothing is run as a type it was not
sent as. Portal responses (`/portal/...`), whose URLs hold claim and sign-in tokens and whose
pages show a signed-in client, also get:

* `Content-Security-Policy`: the templates need only their inline `<style>` and the
  workspace's logo (any https origin); forms post back to us; no page may be framed, so the
  claim button cannot be clickjacked. `X-Frame-Options` says the same to older browsers.
* `Referrer-Policy: no-referrer`: the page loads the logo from another origin, which must
  not learn the page's URL, token and all.
* `Cache-Control: no-store`: no shared or browser cache keeps a claim page, the 410 page, or
  the claim response that sets the session cookie.

A pure ASGI middleware: it only edits the response's start message.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PORTAL_PREFIX = "/portal/"
PORTAL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PORTAL_HEADERS = {
    "Content-Security-Policy": PORTAL_CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        portal = scope["path"].startswith(PORTAL_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                headers["X-Content-Type-Options"] = "nosniff"
                if portal:
                    for name, value in PORTAL_HEADERS.items():
                        headers[name] = value
                message["headers"] = headers.raw
            await send(message)

        await self.app(scope, receive, send_with_headers)
