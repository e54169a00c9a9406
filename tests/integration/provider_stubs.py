"""Local stand-ins for Postmark, Gmail and Twilio on real HTTP servers: each checks a request
the way the provider documents it (path, auth, content type, required fields), answers a
refused one as the provider would, and can be told to answer the next sends with any of the
provider's documented errors."""

from __future__ import annotations

import base64
import email
import email.policy
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.integration.live_server import live_server

Answer = tuple[int, dict[str, Any]]


@dataclass
class Stub:
    """What every stub shares: what it accepted, and answers forced on the next requests."""

    accepted: list[Any] = field(default_factory=list)
    refused: list[Answer] = field(default_factory=list)  # what the stub's own checks refused
    forced: list[Answer] = field(default_factory=list)  # answered, in order, to checked requests
    peers: list[tuple[str, int]] = field(default_factory=list)  # the client end of each request's connection
    base_url: str = ""

    def answer_next(self, status: int, body: dict[str, Any]) -> None:
        self.forced.append((status, body))

    def _respond(self, checked: Answer | None, accepted: Any, ok: Answer) -> Response:
        if checked is not None:
            self.refused.append(checked)
            return JSONResponse(checked[1], status_code=checked[0])
        if self.forced:
            status, body = self.forced.pop(0)
            return JSONResponse(body, status_code=status)
        self.accepted.append(accepted)
        return JSONResponse(ok[1], status_code=ok[0])


@asynccontextmanager
async def serving(stub: Stub, path: str, handle: Callable[[Request], Awaitable[Response]]) -> AsyncIterator[Stub]:
    async def not_documented(request: Request) -> Response:
        return JSONResponse({"error": f"no such endpoint {request.method} {request.url.path}"}, status_code=404)

    async def recorded(request: Request) -> Response:
        stub.peers.append((request.client.host, request.client.port))
        return await handle(request)

    app = Starlette(routes=[Route(path, recorded, methods=["POST"]), Route("/{rest:path}", not_documented)])
    async with live_server(app) as base_url:
        stub.base_url = base_url
        yield stub


# -- Postmark: POST /email (https://postmarkapp.com/developer/api/email-api) ----------------------

@dataclass
class PostmarkStub(Stub):
    server_token: str = field(default_factory=lambda: secrets.token_hex(16))

    async def handle(self, request: Request) -> Response:
        return self._respond(await self._check(request), *(await self._parsed(request)))

    async def _parsed(self, request: Request) -> tuple[dict, Answer]:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        return body, (200, {"To": body.get("To"), "SubmittedAt": "2026-11-29T17:00:00Z",
                            "MessageID": secrets.token_hex(8), "ErrorCode": 0, "Message": "OK"})

    async def _check(self, request: Request) -> Answer | None:
        if request.headers.get("X-Postmark-Server-Token") != self.server_token:
            return 401, {"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied in the HTTP headers."}
        if request.headers.get("Accept") != "application/json" or request.headers.get("Content-Type") != "application/json":
            return 415, {"ErrorCode": 409, "Message": "JSON request required: Accept and Content-Type application/json."}
        try:
            body = await request.json()
        except ValueError:
            return 422, {"ErrorCode": 402, "Message": "Invalid JSON"}
        missing = [k for k in ("From", "To", "Subject") if not body.get(k)]
        if not (body.get("HtmlBody") or body.get("TextBody")):
            missing.append("HtmlBody or TextBody")
        metadata = body.get("Metadata", {})
        if missing or not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            return 422, {"ErrorCode": 300, "Message": f"Invalid email request: {missing or 'Metadata'}"}
        return None


@asynccontextmanager
async def postmark_stub() -> AsyncIterator[PostmarkStub]:
    stub = PostmarkStub()
    async with serving(stub, "/email", stub.handle):
        yield stub


# -- Gmail: POST /gmail/v1/users/me/messages/send (developers.google.com/gmail/api) ---------------

def google_error(status: int, reason: str, message: str) -> Answer:
    return status, {"error": {"code": status, "message": message, "status": reason}}


@dataclass
class GmailStub(Stub):
    valid_tokens: set[str] = field(default_factory=set)
    bearers_seen: list[str] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        self.bearers_seen.append(bearer)
        checked: Answer | None = None
        message = None
        if scheme != "Bearer" or bearer not in self.valid_tokens:
            checked = google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        elif request.headers.get("Content-Type") != "application/json":
            checked = google_error(400, "INVALID_ARGUMENT", "Expected a JSON body.")
        else:
            message = _raw_message((await request.json()).get("raw"))
            if message is None or not message["To"]:
                checked = google_error(400, "INVALID_ARGUMENT", "Invalid To header / raw message")
        ok = (200, {"id": secrets.token_hex(8), "threadId": secrets.token_hex(8), "labelIds": ["SENT"]})
        return self._respond(checked, message, ok)


def _raw_message(raw: object) -> EmailMessage | None:
    if not isinstance(raw, str):
        return None
    try:
        data = base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4))
    except ValueError:
        return None
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


@asynccontextmanager
async def gmail_stub() -> AsyncIterator[GmailStub]:
    stub = GmailStub()
    async with serving(stub, "/gmail/v1/users/me/messages/send", stub.handle):
        yield stub


# -- Twilio: POST /2010-04-01/Accounts/{sid}/Messages.json (twilio.com/docs/messaging/api) --------

@dataclass
class TwilioStub(Stub):
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))

    async def handle(self, request: Request) -> Response:
        checked = self._check_auth(request)
        form = dict(await request.form()) if checked is None else {}
        if checked is None:
            checked = self._check_form(request, form)
        sid = "SM" + secrets.token_hex(16)
        ok = (201, {"sid": sid, "account_sid": self.account_sid, "to": form.get("To"), "from": form.get("From"),
                    "body": form.get("Body"), "status": "queued", "num_segments": "1"})
        return self._respond(checked, form, ok)

    def _check_auth(self, request: Request) -> Answer | None:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.path_params["sid"] != self.account_sid or request.headers.get("Authorization") != f"Basic {expected}":
            return twilio_error(401, 20003, "Authenticate")
        return None

    @staticmethod
    def _check_form(request: Request, form: dict) -> Answer | None:
        if not request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return twilio_error(400, 20001, "Parameters must be form-encoded")
        if not form.get("To"):
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body"):
            return twilio_error(400, 21602, "Message body is required.")
        return None


def twilio_error(status: int, code: int, message: str) -> Answer:
    return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status}


@asynccontextmanager
async def twilio_stub() -> AsyncIterator[TwilioStub]:
    stub = TwilioStub()
    async with serving(stub, "/2010-04-01/Accounts/{sid}/Messages.json", stub.handle):
        yield stub
