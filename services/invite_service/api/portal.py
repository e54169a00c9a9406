"""The client portal: claim an invitation, hold a session.

A GET on a link only renders a page (email scanners prefetch links); the POST from that
page's button consumes the token. Pages work without JavaScript; JSON is answered to
callers that send `Accept: application/json`.
"""

from __future__ import annotations

import logging
from pathlib import Path as FsPath
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.common.metrics import CLAIMS
from services.common.problems import PROBLEM_JSON, PROBLEM_REF, Problem, problem_response
from services.invite_service import sessions
from services.invite_service.api.deps import Access, Pool
from services.invite_service.domain.errors import DomainError, LinkInvalid
from services.invite_service.domain.workspace import DEFAULTS

router = APIRouter(prefix="/portal/{ws}", tags=["portal"])
templates = Jinja2Templates(directory=FsPath(__file__).resolve().parent.parent / "templates")
log = logging.getLogger(__name__)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def _brand(access, ws: str) -> dict[str, Any]:
    try:
        return (await run_in_threadpool(access.get_workspace, ws)).sender
    except DomainError:  # unknown workspace: a neutral page, revealing nothing
        return {"workspace_name": "Client portal", "sender_name": "the sender", "logo_url": None,
                "brand_color": DEFAULTS["branding"]["brand_color"]}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _refused(request: Request, access, ws: str) -> Response | None:
    """429 once this client has opened too many invalid links (see rate_limits.py), else None."""
    problem = await request.app.state.claim_failures.check(_client(request))
    if problem is None:
        return None
    if _wants_json(request):
        return problem_response(problem, request)
    ctx = {"brand": await _brand(access, ws), "retry_after": problem.headers["Retry-After"]}
    return templates.TemplateResponse(request, "too_many_attempts.html", ctx, status_code=429, headers=problem.headers)


async def _link_invalid(request: Request, access, ws: str) -> Response:
    await request.app.state.claim_failures.failed(_client(request))
    if _wants_json(request):
        return problem_response(Problem(410, LinkInvalid.code, "Link invalid", LinkInvalid.detail), request)
    ctx = {"brand": await _brand(access, ws)}
    return templates.TemplateResponse(request, "link_invalid.html", ctx, status_code=410)


_LINK_INVALID = {
    410: {
        "description": "Used, expired or voided by a newer invitation (`link_invalid`): a page, or problem "
        "details for `Accept: application/json`",
        "content": {"text/html": {}, PROBLEM_JSON: {"schema": PROBLEM_REF}},
    },
    429: {
        "description": "This address opened too many invalid links in the last minute (`too_many_attempts`); "
        "see Retry-After",
        "content": {"text/html": {}, PROBLEM_JSON: {"schema": PROBLEM_REF}},
    },
}


@router.get(
    "/claim/{token}",
    response_class=Response,
    summary="The claim page: shows the invitation, consumes nothing",
    responses={200: {"description": "A page whose button POSTs the claim", "content": {"text/html": {}}}, **_LINK_INVALID},
)
async def show_claim(request: Request, access: Access, ws: str = Path(), token: str = Path()) -> Response:
    if refused := await _refused(request, access, ws):
        return refused
    try:
        invitation, account = await run_in_threadpool(access.check_claim, ws, token)
    except LinkInvalid:
        return await _link_invalid(request, access, ws)
    workspace = await run_in_threadpool(access.get_workspace, ws)
    ctx = {
        "brand": workspace.sender,
        "name": account.name,
        "email": account.email,
        "expires_at": invitation.expires_at,
        "action": request.url.path,
        "ask_password": workspace.settings["sign_in_method"] == "password",
    }
    return templates.TemplateResponse(request, "claim.html", ctx, headers={"Cache-Control": "no-store"})


@router.post(
    "/claim/{token}",
    response_class=Response,
    summary="Claim the invitation and start a session",
    responses={
        200: {"description": "With `Accept: application/json`: {account_id, status}; sets the session cookie",
              "content": {"application/json": {}}},
        303: {"description": "From the page's form: on to the portal, with the session cookie"},
        **_LINK_INVALID,
    },
)
async def claim(request: Request, access: Access, pool: Pool, ws: str = Path(), token: str = Path()) -> Response:
    if refused := await _refused(request, access, ws):
        return refused
    try:
        result = await run_in_threadpool(access.claim, ws, token)
    except LinkInvalid:
        CLAIMS.labels("link_invalid").inc()
        return await _link_invalid(request, access, ws)
    CLAIMS.labels("claimed").inc()
    cookie = await sessions.start(pool, ws, result.account_id, result.access_epoch, method="claim")
    log.info("account %s claimed its invitation in %s", result.account_id, ws)
    body: Response
    if _wants_json(request):
        body = JSONResponse({"account_id": str(result.account_id), "status": result.status, "position": result.position})
    else:
        body = RedirectResponse(f"/portal/{ws}/", status_code=303)
    _set_session_cookie(body, request, ws, cookie)
    return body


def _set_session_cookie(response: Response, request: Request, ws: str, value: str) -> None:
    response.set_cookie(
        sessions.COOKIE_NAME,
        value,
        max_age=int(sessions.ABSOLUTE_LIFETIME.total_seconds()),
        path=f"/portal/{ws}",
        httponly=True,
        # Behind a TLS-terminating proxy the request itself is plain HTTP; the public URL is
        # what the browser sees.
        secure=request.url.scheme == "https" or request.app.state.settings.public_base_url.startswith("https://"),
        samesite="lax",
    )


async def _current_account(request: Request, access, pool, ws: str):
    """The signed-in account, or None once signed out, disabled or its access epoch moved on."""
    session = await sessions.find(pool, ws, request.cookies.get(sessions.COOKIE_NAME))
    if session is None:
        return None
    account = await run_in_threadpool(access.get_account, session.account_id)
    if account.status != "active" or account.access_epoch != session.access_epoch:
        return None
    return account


@router.get("/session", responses={401: {
    "description": "Not signed in, signed out, or the account was disabled or reset since (`not_signed_in`)",
    "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}})
async def session(request: Request, access: Access, pool: Pool, ws: str = Path()) -> dict[str, Any]:
    account = await _current_account(request, access, pool, ws)
    if account is None:
        raise Problem(401, "not_signed_in", "Not signed in", "Sign in to the portal first.")
    return {
        "account_id": str(account.id),
        "email": account.email,
        "name": account.name,
        "role": account.role,
        "resources": account.resources,
    }


@router.get("/", response_class=Response, responses={
    200: {"description": "The portal page of the signed-in client", "content": {"text/html": {}}},
    401: {"description": "A page saying the client is not signed in", "content": {"text/html": {}}}})
async def home(request: Request, access: Access, pool: Pool, ws: str = Path()) -> Response:
    account = await _current_account(request, access, pool, ws)
    ctx = {"brand": await _brand(access, ws), "account": account, "sign_out": f"/portal/{ws}/sign-out"}
    return templates.TemplateResponse(request, "portal_home.html", ctx, status_code=200 if account else 401)


@router.post("/sign-out", response_class=Response)
async def sign_out(request: Request, pool: Pool, ws: str = Path()) -> Response:
    await sessions.end(pool, request.cookies.get(sessions.COOKIE_NAME))
    response: Response = (
        Response(status_code=204) if _wants_json(request) else RedirectResponse(f"/portal/{ws}/", status_code=303)
    )
    response.delete_cookie(sessions.COOKIE_NAME, path=f"/portal/{ws}")
    return response
