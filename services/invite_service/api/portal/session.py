"""The signed-in portal: the session as JSON (for the host portal), the home page, sign-out.

A session check is one statement on the sessions table joined with the account's small
access row (sessions.py); it never replays the account's events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from services.common.problems import PROBLEM_JSON, PROBLEM_REF, Problem, problem_response
from services.invite_service import sessions
from services.invite_service.api.deps import Access, ReadPool, Settings
from services.invite_service.api.portal.forms import page_or_problem, check_csrf, read_body, render, wants_json
from services.invite_service.api.portal.pages import look

router = APIRouter(prefix="/portal/{ws}", tags=["portal"])


async def current(request: Request, pool, settings, ws: str) -> sessions.Session | None:
    """The live session, or None once signed out, expired, disabled or reset."""
    idle = timedelta(hours=settings.session_idle_hours)
    return await sessions.find(pool, ws, request.cookies.get(sessions.COOKIE_NAME), idle)


@router.get("/session", responses={401: {
    "description": "Not signed in, signed out, expired, or the account was disabled or reset since (`not_signed_in`)",
    "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}})
async def session(request: Request, pool: ReadPool, settings: Settings, ws: str = Path()) -> dict[str, Any]:
    found = await current(request, pool, settings, ws)
    if found is None:
        raise Problem(401, "not_signed_in", "Not signed in", "Sign in to the portal first.")
    return found.as_json()


@router.get("/", response_class=Response, responses={
    200: {"description": "The portal page of the signed-in client", "content": {"text/html": {}}},
    401: {"description": "A page saying the client is not signed in, with the sign-in form", "content": {"text/html": {}}}})
async def home(request: Request, access: Access, pool: ReadPool, settings: Settings, ws: str = Path()) -> Response:
    found = await current(request, pool, settings, ws)
    sender, method, _ = await look(access, ws)
    ctx = {"brand": sender, "account": found, "sign_out": f"/portal/{ws}/sign-out", "method": method or "magic_link"}
    return render(request, access, ws, "portal_home.html", ctx, status_code=200 if found else 401)


@router.post("/sign-out", response_class=Response, responses={
    204: {"description": "With `Accept: application/json`"}, 303: {"description": "From the page: back to the portal page"},
    403: page_or_problem("A form post without a valid CSRF token (`csrf_failed`)")})
async def sign_out(request: Request, access: Access, pool: ReadPool, ws: str = Path()) -> Response:
    body = await read_body(request)
    if problem := check_csrf(request, body, access.secret_key):
        return problem_response(problem, request)
    await sessions.end(pool, request.cookies.get(sessions.COOKIE_NAME))
    response: Response = (
        Response(status_code=204) if wants_json(request) else RedirectResponse(f"/portal/{ws}/", status_code=303)
    )
    response.delete_cookie(sessions.COOKIE_NAME, path=f"/portal/{ws}")
    return response
