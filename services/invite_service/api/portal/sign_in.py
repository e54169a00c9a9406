"""Client sign-in: the sign-in page, "email me a link / a code", code and password checks,
magic links, "forgot password" and the reset link.

Every POST here is rate limited per client address and per email, in PostgreSQL so the
limits hold across API replicas (signin/throttle.py). Requests that send something answer
202 with one body before any work that depends on the address is done (the work runs
after the answer), so neither the answer nor its timing says whether an account exists.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from services.common import tokens
from services.common.problems import Problem, problem_response
from services.invite_service.api.deps import Access, ClaimFailures, Settings, SignInThrottle
from services.invite_service.api.portal.forms import (
    page_or_problem,
    check_csrf, client_of, problem_or_page, read_body, render, signed_in, wants_json,
)
from services.invite_service.api.portal.pages import LINK_INVALID_RESPONSES, link_invalid, look, refused
from services.invite_service.commands.sign_in import Client
from services.invite_service.domain.errors import LinkInvalid, LockedOut, WeakPassword, WrongCode, WrongPassword
from services.invite_service.signin.throttle import Limit

router = APIRouter(prefix="/portal/{ws}", tags=["portal"])
log = logging.getLogger(__name__)

ACCEPTED = {"status": "accepted",
            "detail": "If that address has an account, we sent it what it needs to sign in."}
_HTML = {"content": {"text/html": {}}}
LIMITED = {429: page_or_problem("Over the per-email or per-address limit, or locked after 5 wrong attempts "
                 "(`too_many_attempts`); see Retry-After"), 403: page_or_problem("No valid CSRF token (`csrf_failed`)")}


class EmailIn(BaseModel):
    email: str = Field(min_length=1, max_length=320)


class CodeIn(EmailIn):
    code: str = Field(min_length=1, max_length=32)


class PasswordIn(EmailIn):
    password: str = Field(min_length=1, max_length=1024)


class NewPasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)


async def _form(request: Request, access, model: type[BaseModel]) -> tuple[Any, Problem | None]:
    body = await read_body(request)
    if problem := check_csrf(request, body, access.secret_key):
        return None, problem
    try:
        return model.model_validate(body), None
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors())
        return None, Problem(422, "validation_error", "Invalid request", f"Check the form: {fields}.")


async def _over_limit(request: Request, throttle, settings, endpoint: str, email: str | None) -> Problem | None:
    """Count this request against the client address's limit and the email's (when there is
    one); the 429 to answer when either is over. Shared by every replica (PostgreSQL)."""
    window = timedelta(minutes=settings.sign_in_window_minutes)
    ip, _ = client_of(request)
    by_ip = await throttle.hit(Limit(f"{endpoint}:ip", settings.sign_in_per_ip, window), ip or "unknown")
    by_email = None
    if email:
        by_email = await throttle.hit(Limit(f"{endpoint}:email", settings.sign_in_per_email, window),
                                      email.strip().lower())
    return by_ip or by_email


def _client(request: Request) -> Client:
    return Client(*client_of(request))


async def _answer(request: Request, access, ws: str, problem: Problem, template: str = "sign_in.html",
                  **ctx: Any) -> Response:
    sender, method, settings = await look(access, ws)
    if problem.status == 429 and not wants_json(request):
        template = "too_many_attempts.html"
        ctx["retry_after"] = problem.headers.get("Retry-After")
    return problem_or_page(request, access, ws, problem,
                           template, {"brand": sender, "method": method, **ctx})


def _locked(exc: LockedOut) -> Problem:
    retry_after = str(exc.extra.get("retry_after", 900))
    return Problem(429, "too_many_attempts", "Too many attempts",
                   f"Too many wrong attempts; sign-in is locked. Try again in {retry_after} seconds.",
                   headers={"Retry-After": retry_after})


@router.get("/sign-in", response_class=Response, summary="The branded sign-in page", responses={200: _HTML})
async def sign_in_page(request: Request, access: Access, ws: str = Path()) -> Response:
    sender, method, _ = await look(access, ws)
    return render(request, access, ws, "sign_in.html", {"brand": sender, "method": method or "magic_link"})


async def _after(work, ws: str) -> None:
    try:
        await work
    except Exception:  # noqa: BLE001 - after the answer there is nobody to tell but the log
        log.exception("a sign-in request in %s failed", ws)  # never the address: it would tell who tried


@router.post("/sign-in", response_class=Response, status_code=202,
             summary="Email a magic link or a code, per the workspace's method; 202 whether or not the email has an account",
             responses={202: {"description": "The same answer for every address", **_HTML}, **LIMITED})
async def request_sign_in(request: Request, background: BackgroundTasks, access: Access, settings: Settings,
                          throttle: SignInThrottle, ws: str = Path()) -> Response:
    form, problem = await _form(request, access, EmailIn)
    if problem is None:
        problem = await _over_limit(request, throttle, settings, "sign-in", form.email)
    if problem is not None:
        return await _answer(request, access, ws, problem)
    background.add_task(_after, access.request_sign_in(ws, form.email), ws)
    return await _accepted(request, access, ws, form.email)


async def _accepted(request: Request, access, ws: str, email: str, forgot: bool = False) -> Response:
    if wants_json(request):
        return JSONResponse(ACCEPTED, status_code=202)
    sender, method, settings = await look(access, ws)
    ctx = {"brand": sender, "method": "magic_link" if forgot else method, "email": email, "forgot": forgot,
           "ttl_minutes": settings.get("magic_link_ttl_minutes") or 15}
    return render(request, access, ws, "sign_in_sent.html", ctx, status_code=202)


@router.post("/sign-in/code", response_class=Response, summary="Sign in with the emailed 6-digit code",
             responses={303: {"description": "Signed in: on to the portal"}, 401: page_or_problem("Wrong or expired code (`wrong_code`)"), **LIMITED})
async def sign_in_with_code(request: Request, background: BackgroundTasks, access: Access, settings: Settings,
                            throttle: SignInThrottle, ws: str = Path()) -> Response:
    form, problem = await _form(request, access, CodeIn)
    if problem is None:
        problem = await _over_limit(request, throttle, settings, "code", form.email)
    if problem is None:
        try:
            result = await access.sign_in_with_code(ws, form.email, form.code, _client(request),
                                                    defer=lambda work: background.add_task(_after, work, ws))
            return signed_in(request, ws, result, settings)
        except WrongCode as exc:
            problem = Problem(401, exc.code, "Wrong code", exc.detail)
        except LockedOut as exc:
            problem = _locked(exc)
    email = form.email if form else ""
    return await _answer(request, access, ws, problem, "sign_in_sent.html", email=email)


@router.post("/sign-in/password", response_class=Response, summary="Sign in with email and password",
             responses={303: {"description": "Signed in: on to the portal"}, 401: page_or_problem("Wrong email or password (`wrong_password`)"), **LIMITED})
async def sign_in_with_password(request: Request, background: BackgroundTasks, access: Access, settings: Settings,
                                throttle: SignInThrottle, ws: str = Path()) -> Response:
    form, problem = await _form(request, access, PasswordIn)
    if problem is None:
        problem = await _over_limit(request, throttle, settings, "password", form.email)
    if problem is None:
        try:
            result = await access.sign_in_with_password(ws, form.email, form.password, _client(request),
                                                        defer=lambda work: background.add_task(_after, work, ws))
            return signed_in(request, ws, result, settings)
        except WrongPassword as exc:
            problem = Problem(401, exc.code, "Wrong email or password", exc.detail)
        except LockedOut as exc:
            problem = _locked(exc)
    return await _answer(request, access, ws, problem, email=form.email if form else "")


@router.get("/password/forgot", response_class=Response, summary="Ask for a password-reset link", responses={200: _HTML})
async def forgot_page(request: Request, access: Access, ws: str = Path()) -> Response:
    sender, _, _ = await look(access, ws)
    return render(request, access, ws, "password_forgot.html", {"brand": sender})


@router.post("/password/forgot", response_class=Response, status_code=202,
             summary="Email a password-reset link; 202 whether or not the email has an account",
             responses={202: {"description": "The same answer for every address", **_HTML}, **LIMITED})
async def forgot_password(request: Request, background: BackgroundTasks, access: Access, settings: Settings,
                          throttle: SignInThrottle, ws: str = Path()) -> Response:
    form, problem = await _form(request, access, EmailIn)
    if problem is None:
        problem = await _over_limit(request, throttle, settings, "forgot", form.email)
    if problem is not None:
        return await _answer(request, access, ws, problem, "password_forgot.html")
    background.add_task(_after, access.forgot_password(ws, form.email), ws)
    return await _accepted(request, access, ws, form.email, forgot=True)


# Links: a GET renders a page with a button (scanners prefetch links); the POST uses the link.

@router.get("/magic/{token}", response_class=Response, summary="A sign-in link's page: consumes nothing",
            responses={200: _HTML, **LINK_INVALID_RESPONSES})
async def magic_page(request: Request, access: Access, failures: ClaimFailures, ws: str = Path(),
                     token: str = Path()) -> Response:
    if over_limit := await refused(request, failures, access, ws):
        return over_limit
    try:
        account = await _check(access, ws, token, tokens.MAGIC)
    except LinkInvalid:
        return await link_invalid(request, failures, access, ws)
    sender, _, _ = await look(access, ws)
    return render(request, access, ws, "magic.html",
                  {"brand": sender, "email": account.email, "action": request.url.path})


async def _check(access, ws: str, token: str, purpose: str):
    return await run_in_threadpool(access.check_link, ws, token, purpose)


@router.post("/magic/{token}", response_class=Response, summary="Sign in with the link",
             responses={303: {"description": "Signed in: on to the portal"}, **LINK_INVALID_RESPONSES})
async def magic_sign_in(request: Request, access: Access, failures: ClaimFailures, settings: Settings,
                        throttle: SignInThrottle, ws: str = Path(), token: str = Path()) -> Response:
    if over_limit := await refused(request, failures, access, ws):
        return over_limit
    if problem := await _over_limit(request, throttle, settings, "magic", None):
        return await _answer(request, access, ws, problem)
    body = await read_body(request)
    if problem := check_csrf(request, body, access.secret_key):
        return problem_response(problem, request)
    try:
        result = await access.sign_in_with_magic_link(ws, token, _client(request))
    except LinkInvalid:
        return await link_invalid(request, failures, access, ws)
    return signed_in(request, ws, result, settings)


@router.get("/password/reset/{token}", response_class=Response, summary="A reset link's page: consumes nothing",
            responses={200: _HTML, **LINK_INVALID_RESPONSES})
async def reset_page(request: Request, access: Access, failures: ClaimFailures, ws: str = Path(),
                     token: str = Path()) -> Response:
    if over_limit := await refused(request, failures, access, ws):
        return over_limit
    try:
        account = await _check(access, ws, token, tokens.RESET)
    except LinkInvalid:
        return await link_invalid(request, failures, access, ws)
    sender, _, _ = await look(access, ws)
    return render(request, access, ws, "password_reset.html",
                  {"brand": sender, "email": account.email, "action": request.url.path})


@router.post("/password/reset/{token}", response_class=Response,
             summary="Set a new password from a reset link: ends every other session and signs in",
             responses={303: {"description": "Signed in: on to the portal"},
                        422: page_or_problem("The password breaks a rule (`weak_password`)"), **LINK_INVALID_RESPONSES})
async def reset_password(request: Request, access: Access, failures: ClaimFailures, settings: Settings,
                         throttle: SignInThrottle, ws: str = Path(), token: str = Path()) -> Response:
    if over_limit := await refused(request, failures, access, ws):
        return over_limit
    if problem := await _over_limit(request, throttle, settings, "reset", None):
        return await _answer(request, access, ws, problem)
    form, problem = await _form(request, access, NewPasswordIn)
    if problem is not None:
        return problem_response(problem, request)
    try:
        result = await access.reset_password(ws, token, form.password, _client(request))
    except LinkInvalid:
        return await link_invalid(request, failures, access, ws)
    except WeakPassword as exc:
        account = await _check(access, ws, token, tokens.RESET)
        sender, _, _ = await look(access, ws)
        return problem_or_page(request, access, ws, Problem(422, exc.code, "Choose a different password",
                               exc.detail), "password_reset.html",
                               {"brand": sender, "email": account.email, "action": request.url.path})
    return signed_in(request, ws, result, settings)
