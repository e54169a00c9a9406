"""One place that turns every failure into RFC 9457 problem details with a stable `code`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.problems import Problem, handle_problem, problem_response
from services.invite_service.domain import errors as domain

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    domain.EmailRequired.code: 422,
    domain.InvalidEmail.code: 422,
    domain.InvalidPhone.code: 422,
    domain.UnknownRole.code: 422,
    domain.DuplicateEmail.code: 409,
    domain.InvalidState.code: 409,
    domain.PortalDisabled.code: 403,
    domain.PlanRequired.code: 403,
    domain.LinkInvalid.code: 410,
    domain.WorkspaceNotFound.code: 404,
    domain.AccountNotFound.code: 404,
    domain.TooManyResends.code: 429,
}
# Field errors that have a code of their own rather than the generic validation_error.
FIELD_CODES = {domain.EmailRequired.code, domain.InvalidEmail.code, domain.InvalidPhone.code}


def domain_problem(exc: domain.DomainError) -> Problem:
    status = STATUS_BY_CODE.get(exc.code, 400)
    title = exc.code.replace("_", " ").capitalize()
    return Problem(status, exc.code, title, exc.detail, **exc.extra)


async def handle_domain_error(request: Request, exc: domain.DomainError) -> JSONResponse:
    return problem_response(domain_problem(exc), request)


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part != "body")


def validation_problem(pydantic_errors: list[dict]) -> Problem:
    """The problem for a body that failed validation; also each invalid row of a bulk invite,
    so a row answers exactly what the same invite sent alone would."""
    errors = [{"field": _field(e["loc"]), "type": e["type"], "message": e["msg"]} for e in pydantic_errors]
    if any(e["type"] == "json_invalid" for e in errors):
        return Problem(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.")
    specific = next((e for e in errors if e["type"] in FIELD_CODES), None)
    if specific:
        return Problem(422, specific["type"], "Invalid contact", specific["message"], errors=errors)
    detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)
    return Problem(422, "validation_error", "Invalid request", detail, errors=errors)


async def handle_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return problem_response(validation_problem(list(exc.errors())), request)


async def handle_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
    return problem_response(Problem(exc.status_code, code, str(exc.detail), None, headers=exc.headers or {}), request)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The route's template, not the URL: a portal URL carries a token, which must never be
    # logged; nor are headers or cookies (the log formatter shows no locals either).
    route = getattr(request.scope.get("route"), "path", "(no route)")
    message = str(exc)[:300]
    log.error("unhandled error on %s %s: %s: %s", request.method, route, type(exc).__name__, message, exc_info=exc)
    return problem_response(Problem(500, "internal_error", "Internal error", "Something went wrong on our side."), request)


class UnexpectedErrors:
    """Answers an error no handler took with a 500 problem, logged once by handle_unexpected.

    Starlette's outermost ServerErrorMiddleware calls the same handler but then re-raises,
    so that the server logs the error a second time, whole ("Exception in ASGI application").
    This pure ASGI middleware sits inside it and does not re-raise."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as exc:  # noqa: BLE001 - the last stop before the server
            response = await handle_unexpected(Request(scope), exc)
            if not started:  # else the client sees the response cut short; the log says why
                await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, handle_problem)
    app.add_exception_handler(domain.DomainError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    # Errors raised by the middlewares registered after this one still reach Starlette's.
    app.add_exception_handler(Exception, handle_unexpected)
    app.add_middleware(UnexpectedErrors)
