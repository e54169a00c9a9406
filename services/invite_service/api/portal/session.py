"""The signed-in portal: the session as JSON, the home page, and sign-out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from services.common.problems import PROBLEM_JSON, PROBLEM_REF, Problem
from services.invite_service import sessions
from services.invite_service.api.deps import Access, ReadPool
from services.invite_service.api.portal.pages import brand, templates, wants_json
from services.invite_service.application import PortalAccess
from services.invite_service.domain.portal_account import PortalAccount

router = APIRouter(prefix="/portal/{ws}", tags=["portal"])


async def _current_account(request: Request, access: PortalAccess, pool, ws: str) -> PortalAccount | None:
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
async def session(request: Request, access: Access, pool: ReadPool, ws: str = Path()) -> dict[str, Any]:
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
async def home(request: Request, access: Access, pool: ReadPool, ws: str = Path()) -> Response:
    account = await _current_account(request, access, pool, ws)
    ctx = {"brand": await brand(access, ws), "account": account, "sign_out": f"/portal/{ws}/sign-out"}
    return templates.TemplateResponse(request, "portal_home.html", ctx, status_code=200 if account else 401)


@router.post("/sign-out", response_class=Response)
async def sign_out(request: Request, pool: ReadPool, ws: str = Path()) -> Response:
    await sessions.end(pool, request.cookies.get(sessions.COOKIE_NAME))
    response: Response = (
        Response(status_code=204) if wants_json(request) else RedirectResponse(f"/portal/{ws}/", status_code=303)
    )
    response.delete_cookie(sessions.COOKIE_NAME, path=f"/portal/{ws}")
    return response
