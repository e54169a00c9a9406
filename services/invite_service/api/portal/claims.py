"""Claiming an invitation: a GET on a link only renders a page (email scanners prefetch
links); the POST from that page's button consumes the token and starts the session."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from services.common.metrics import CLAIMS
from services.invite_service import sessions
from services.invite_service.api.deps import Access, ClaimFailures, Settings
from services.invite_service.api.portal.pages import LINK_INVALID_RESPONSES, link_invalid, refused, templates, wants_json
from services.invite_service.domain.errors import LinkInvalid

router = APIRouter(prefix="/portal/{ws}", tags=["portal"])
log = logging.getLogger(__name__)


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
        invitation, account = await run_in_threadpool(access.check_claim, ws, token)
    except LinkInvalid:
        return await link_invalid(request, failures, access, ws)
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
        **LINK_INVALID_RESPONSES,
    },
)
async def claim(
    request: Request, access: Access, failures: ClaimFailures, settings: Settings, ws: str = Path(), token: str = Path()
) -> Response:
    if over_limit := await refused(request, failures, access, ws):
        return over_limit
    try:
        # The session row commits with the claim's events: no spent link without a session.
        result = await access.claim(ws, token)
    except LinkInvalid:
        CLAIMS.labels("link_invalid").inc()
        return await link_invalid(request, failures, access, ws)
    CLAIMS.labels("claimed").inc()
    log.info("account %s claimed its invitation in %s", result.account_id, ws)
    body: Response
    if wants_json(request):
        body = JSONResponse({"account_id": str(result.account_id), "status": result.status, "position": result.position})
    else:
        body = RedirectResponse(f"/portal/{ws}/", status_code=303)
    body.set_cookie(
        sessions.COOKIE_NAME,
        result.session,
        max_age=int(sessions.ABSOLUTE_LIFETIME.total_seconds()),
        path=f"/portal/{ws}",
        httponly=True,
        # Behind a TLS-terminating proxy the request itself is plain HTTP; the public URL is
        # what the browser sees.
        secure=request.url.scheme == "https" or settings.public_base_url.startswith("https://"),
        samesite="lax",
    )
    return body
