"""Claiming an invitation: a GET on a link only renders a page (email scanners prefetch
links); the POST from that page's button consumes the token and starts the session. In a
password workspace the POST also sets the password; in a code workspace the claim itself
is the first sign-in (the single-use link already proves the address)."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from services.common.metrics import CLAIMS
from services.common.problems import Problem, problem_response
from services.invite_service.api.deps import Access, ClaimFailures, Settings, SignInThrottle
from services.invite_service.api.portal.forms import page_or_problem, check_csrf, client_of, read_body, render, signed_in, wants_json
from services.invite_service.api.portal.pages import LINK_INVALID_RESPONSES, link_invalid, look, refused
from services.invite_service.commands.sign_in import Client
from services.invite_service.domain.errors import LinkInvalid, WeakPassword
from services.invite_service.signin.throttle import Limit

from services.messages.rendering import format_expiry

router = APIRouter(prefix="/portal/{ws}", tags=["portal"])
log = logging.getLogger(__name__)


async def _page(request: Request, access, ws: str, token: str, status_code: int = 200, error: str | None = None):
    invitation, account = await run_in_threadpool(access.check_claim, ws, token)
    workspace = await run_in_threadpool(access.get_workspace, ws)
    ctx = {
        "brand": workspace.sender,
        "name": account.name,
        "email": account.email,
        # In words and in the workspace's zone, exactly as the email that brought the client here.
        "expires": format_expiry(invitation.expires_at, workspace.settings.get("time_zone") or "UTC"),
        "action": request.url.path,
        "ask_password": workspace.settings["sign_in_method"] == "password",
        "error": error,
    }
    return render(request, access, ws, "claim.html", ctx, status_code=status_code)


@router.get(
    "/claim/{token}",
    response_class=Response,
    summary="The claim page: shows the invitation, consumes nothing",
    responses={
        200: {"description": "A page whose button POSTs the claim", "content": {"text/html": {}}},
        **LINK_INVALID_RESPONSES,
    },
)
async def show_claim(
    request: Request, access: Access, failures: ClaimFailures, ws: str = Path(), token: str = Path()
) -> Response:
    if over_limit := await refused(request, failures, access, ws):
        return over_limit
    try:
        return await _page(request, access, ws, token)
    except LinkInvalid:
        return await link_invalid(request, failures, access, ws)


@router.post(
    "/claim/{token}",
    response_class=Response,
    summary="Claim the invitation (with `password` in a password workspace) and start a session",
    responses={
        200: {"description": "With `Accept: application/json`: {account_id, status, redirect_to}; sets the "
              "session cookie", "content": {"application/json": {}}},
        303: {"description": "From the page's form: on to the workspace's portal_url with a one-time `code`, or "
              "to Porchlight's portal page, with the session cookie"},
        403: page_or_problem("A form post without a valid CSRF token (`csrf_failed`)"),
        422: page_or_problem("The password breaks a rule (`weak_password`); the page says which"),
        **LINK_INVALID_RESPONSES,
    },
)
async def claim(
    request: Request, access: Access, failures: ClaimFailures, settings: Settings, throttle: SignInThrottle,
    ws: str = Path(), token: str = Path()
) -> Response:
    if over_limit := await refused(request, failures, access, ws):
        return over_limit
    window = timedelta(minutes=settings.sign_in_window_minutes)
    ip, user_agent = client_of(request)
    if problem := await throttle.hit(Limit("claim:ip", settings.sign_in_per_ip, window), ip or "unknown"):
        return problem_response(problem, request) if wants_json(request) else await too_many_page(
            request, access, ws, problem)
    body = await read_body(request)
    if problem := check_csrf(request, body, access.secret_key):
        return problem_response(problem, request)
    try:
        # The session row commits with the claim's events: no spent link without a session.
        result = await access.claim(ws, token, password=body.get("password"), client=Client(ip, user_agent))
    except LinkInvalid:
        CLAIMS.labels("link_invalid").inc()
        return await link_invalid(request, failures, access, ws)
    except WeakPassword as exc:
        problem = Problem(422, exc.code, "Choose a different password", exc.detail)
        if wants_json(request):
            return problem_response(problem, request)
        try:
            return await _page(request, access, ws, token, status_code=422, error=exc.detail)
        except LinkInvalid:
            return await link_invalid(request, failures, access, ws)
    CLAIMS.labels("claimed").inc()
    log.info("account %s claimed its invitation in %s", result.account_id, ws)
    return signed_in(request, ws, result, settings)


async def too_many_page(request: Request, access, ws: str, problem: Problem) -> Response:
    """The too-many-attempts page, for a client address over its limit."""
    sender, _, _ = await look(access, ws)
    return render(request, access, ws, "too_many_attempts.html",
                  {"brand": sender, "retry_after": problem.headers.get("Retry-After"), "error": problem.detail},
                  status_code=429, headers=problem.headers)
