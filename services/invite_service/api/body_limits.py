"""Request bodies the API refuses before any route parses them.

* Too large (over `max_body_bytes`): 413 `body_too_large`. A declared Content-Length is
  checked before reading anything; a chunked body is read up to the limit and no further.
  Without this, a 2 MB name was read and parsed whole before the 200-character rule
  refused it.
* Not JSON on the staff API (`/v1/...`): 415 `unsupported_media_type`, rather than a
  validation error that talks about dictionaries. Portal forms are not affected.

A pure ASGI middleware: Starlette's BaseHTTPMiddleware would put every request through
an extra task and stream.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.problems import Problem, problem_response

JSON_TYPES = ("application/json", "application/problem+json")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _too_large(limit: int) -> Problem:
    return Problem(413, "body_too_large", "Request body too large", f"The request body is larger than {limit} bytes.")


def _not_json() -> Problem:
    return Problem(415, "unsupported_media_type", "Unsupported media type", "Send JSON with Content-Type: application/json.")


class BodyLimits:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_body_bytes:
                await self._refuse(scope, receive, send, _too_large(self.max_body_bytes))
                return
            if int(declared) > 0 and self._must_be_json(scope, headers):
                await self._refuse(scope, receive, send, _not_json())
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
            if size > self.max_body_bytes:
                await self._refuse(scope, receive, send, _too_large(self.max_body_bytes))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if size > 0 and self._must_be_json(scope, headers):
            await self._refuse(scope, receive, send, _not_json())
            return
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    @staticmethod
    def _must_be_json(scope: Scope, headers: dict[str, str]) -> bool:
        if not scope["path"].startswith("/v1/"):
            return False
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        return media_type not in JSON_TYPES

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
