"""`Idempotency-Key`: a retried command answers what the first one answered, and does nothing twice.

Attach it to a command route with one line, `dependencies=[Idempotent]`:

    @router.post("/{account_id}/resend", dependencies=[Idempotent], ...)

A request without the header runs as usual. With one, the first request with that key
runs and its answer (status, body, content type) is kept for 24 hours in PostgreSQL
(`idempotency_keys`); a 5xx or a 429 is not kept, so the retry runs. A repeat with the same
method, path and body gets that answer again, with `Idempotent-Replayed: true`, and the
route does not run.
The same key with another request is 422 `idempotency_key_reused`; a repeat while the
first still runs is 409 `request_in_progress` with Retry-After (it does not wait: a
client's retry loop already does).

Keys are scoped per workspace, not per staff member: the host app retries on behalf of a
person and may mint a fresh staff token for the retry; everything an answer shows is
visible to every staff member of the workspace anyway. The dependency checks the staff
token as the route does before it claims anything, so only staff allowed to write can.

The answer is captured by `IdempotencyRecorder`, a pure ASGI middleware that
`install_idempotency(app)` adds (it sees error answers too, which a route never returns).
Expired keys are deleted lazily: a new claim sweeps a few old rows now and then.

The answer is recorded after the command committed, not in its transaction: if the process
dies in between, the key stays claimed for LEASE_MINUTES, then the same request runs again
and meets its own earlier write (an invite answers `duplicate_email`, a bulk `duplicate`
rows); nothing is stored twice either way.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, FastAPI, Header, Request
from fastapi.security import HTTPBearer
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.deps import read_pool
from services.common.staff_auth import staff_for_workspace, staff_writer
from services.common.problems import Problem

KEEP_HOURS = 24
LEASE_MINUTES = 5  # an unfinished claim older than this was abandoned (its process died)
SWEEP_EVERY = 100  # claims between two sweeps of expired keys
_SCOPE_KEY = "porchlight.idempotency"
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as clients generate (UUIDs)

_CLAIM = f"""
INSERT INTO idempotency_keys (workspace, key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT (workspace, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, created_at = now(), status = NULL, content_type = NULL, body = NULL
    WHERE idempotency_keys.created_at < now() - interval '{KEEP_HOURS} hours'
       OR (idempotency_keys.status IS NULL AND idempotency_keys.fingerprint = EXCLUDED.fingerprint
           AND idempotency_keys.created_at < now() - interval '{LEASE_MINUTES} minutes')
RETURNING true
"""
_SWEEP = f"""
DELETE FROM idempotency_keys WHERE ctid IN (
    SELECT ctid FROM idempotency_keys WHERE created_at < now() - interval '{KEEP_HOURS} hours' LIMIT 500)
"""
_sweep_counter = itertools.count(1)


class Replay(Exception):
    """Raised by the dependency to answer with the stored response instead of running the route."""

    def __init__(self, status: int, content_type: str | None, body: bytes) -> None:
        super().__init__(status)
        self.status, self.content_type, self.body = status, content_type, body


@dataclass(frozen=True)
class Claim:
    """The right to run the request for a key; the middleware records or releases it."""

    pool: asyncpg.Pool
    workspace: str
    key: str

    async def record(self, status: int, content_type: str | None, body: bytes) -> None:
        await self.pool.execute(
            "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5"
            " WHERE workspace = $1 AND key = $2 AND status IS NULL",
            self.workspace, self.key, status, content_type, body,
        )

    async def release(self) -> None:
        await self.pool.execute(
            "DELETE FROM idempotency_keys WHERE workspace = $1 AND key = $2 AND status IS NULL", self.workspace, self.key
        )


def fingerprint(method: str, path: str, content_type: str, body: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), content_type.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.digest()


async def claim_or_answer(pool: asyncpg.Pool, workspace: str, key: str, print_: bytes) -> Claim:
    """A Claim to run the request, or raises what to answer instead (Replay or a Problem)."""
    for _ in range(3):  # the row may be released between our insert and our read
        if await pool.fetchval(_CLAIM, workspace, key, print_):
            if next(_sweep_counter) % SWEEP_EVERY == 0:
                await pool.execute(_SWEEP)
            return Claim(pool, workspace, key)
        row = await pool.fetchrow(
            "SELECT fingerprint, status, content_type, body FROM idempotency_keys WHERE workspace = $1 AND key = $2",
            workspace, key,
        )
        if row is None:
            continue
        if row["fingerprint"] != print_:
            raise Problem(
                422, "idempotency_key_reused", "Idempotency key reused",
                "This Idempotency-Key was used for a different request; use a new key for a new request.",
            )
        if row["status"] is None:
            raise Problem(
                409, "request_in_progress", "Request in progress",
                "A request with this Idempotency-Key is still running; retry shortly.", headers={"Retry-After": "1"},
            )
        raise Replay(row["status"], row["content_type"], row["body"])
    raise Problem(409, "request_in_progress", "Request in progress", "Retry shortly.", headers={"Retry-After": "1"})


_bearer = HTTPBearer(auto_error=False)


async def _idempotency(
    request: Request,
    key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Client-chosen key (e.g. a UUID); a repeat within 24 h answers what the first request did"),
    ] = None,
) -> None:
    # Only the header and the request: every invite resolves this, most carry no key, and
    # each further dependency costs FastAPI measurable CPU per request.
    if key is None:
        return
    # Route-level dependencies run before the route's own: check the staff token here, the
    # way the route does, so only a writer can claim a key (and a 401/403 is never stored).
    staff = await staff_writer(await staff_for_workspace(request.path_params["ws"], request, await _bearer(request)))
    if not _KEY_PATTERN.match(key):
        raise Problem(400, "invalid_idempotency_key", "Invalid Idempotency-Key", "Use 1 to 255 printable ASCII characters.")
    holder = request.scope.get(_SCOPE_KEY)
    if holder is None:
        raise RuntimeError("Idempotency-Key needs install_idempotency(app)")
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    print_ = fingerprint(request.method, request.url.path, content_type, body)
    holder.append(await claim_or_answer(await read_pool(request), staff.ws, key, print_))


Idempotent = Depends(_idempotency)


async def _answer_replay(request: Request, exc: Replay) -> Response:
    return Response(exc.body, status_code=exc.status, media_type=exc.content_type, headers={"Idempotent-Replayed": "true"})


class IdempotencyRecorder:
    """Keeps the answer of every request that claimed a key (or frees the key on a 5xx or 429)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        holder: list[Claim] = []
        scope[_SCOPE_KEY] = holder
        status, content_type, chunks = 500, None, []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if holder:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    headers = dict(message.get("headers", []))
                    content_type = headers.get(b"content-type", b"").decode("latin-1") or None
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            for claim in holder:
                await claim.release()
            raise
        for claim in holder:
            if status < 500 and status != 429:
                await claim.record(status, content_type, b"".join(chunks))
            else:
                await claim.release()


def install_idempotency(app: FastAPI) -> None:
    """After install_error_handlers: the recorder must see the 500 answers too."""
    app.add_exception_handler(Replay, _answer_replay)
    app.add_middleware(IdempotencyRecorder)
