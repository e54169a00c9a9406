"""Request bodies the API refuses before any route parses them.

* Too large (over `max_body_bytes`): 413 `body_too_large`. A declared Content-Length is
  checked before reading anything; a chunked body is read up to the limit and no further.
  Without this, a 2 MB name was read and parsed whole before the 200-character rule
  refused it.
* Not JSON on the staff API (`/v1/...`): 415 `unsupported_media_type`, rather than a
  validation error that talks about dictionaries. Portal forms are not affected.
* The bulk invite (`/v1/workspaces/{ws}/invitations/bulk`) is the one exception to both:
  it takes up to 10,000 rows, so its own limit (`max_bulk_body_bytes`), and CSV as well.

A pure ASGI middleware: Starlette's BaseHTTPMiddleware would put every request through
an extra task and stream.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.problems import Problem, problem_response

JSON_TYPES = ("application/json", "application/problem+json")
BULK_PATH = re.compile(r"^/v1/workspaces/[^/]+/invitations/bulk$")
BULK_TYPES = (*JSON_TYPES, "text/csv")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _too_large(limit: int) -> Problem:
    return Problem(413, "body_too_large", "Request body too large", f"The request body is larger than {limit} bytes.")


def _not_json(bulk: bool) -> Problem:
    wanted = "JSON or CSV (Content-Type: application/json or text/csv)" if bulk else "JSON with Content-Type: application/json"
    return Problem(415, "unsupported_media_type", "Unsupported media type", f"Send {wanted}.")


class BodyLimits:
    def __init__(self, app: ASGIApp, max_body_bytes: int, max_bulk_body_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_bulk_body_bytes = max_bulk_body_bytes or max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        bulk = BULK_PATH.match(scope["path"]) is not None
        limit = self.max_bulk_body_bytes if bulk else self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                await self._refuse(scope, receive, send, _too_large(limit))
                return
            if int(declared) > 0 and self._unsupported(scope, headers, bulk):
                await self._refuse(scope, receive, send, _not_json(bulk))
                return
            await self.app(scope, receive, send)
            return
        # No length declared (chunked): read up to the limit, then hand the app what we read.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, _too_large(limit))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if size > 0 and self._unsupported(scope, headers, bulk):
            await self._refuse(scope, receive, send, _not_json(bulk))
            return
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    @staticmethod
    def _unsupported(scope: Scope, headers: dict[str, str], bulk: bool) -> bool:
        if not scope["path"].startswith("/v1/"):
            return False
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        return media_type not in (BULK_TYPES if bulk else JSON_TYPES)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, problem: Problem) -> None:
        # The rest of the body is not read: close the connection rather than leave it half-read.
        problem.headers["Connection"] = "close"
        await problem_response(problem, Request(scope))(scope, receive, send)


def _replay(messages: list[Message], then: Receive) -> Receive:
    """`receive` that first hands out what the middleware already read, then the real one."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return await then()

    return receive
