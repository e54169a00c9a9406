"""What every portal route shares: the workspace's branding and sign-in method, and the
answers for an invalid link and for a client over its failure limit (a page, or problem
details for `Accept: application/json`)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from services.common.problems import PROBLEM_JSON, PROBLEM_REF, Problem, problem_response
from services.invite_service.api.portal.forms import render, templates, wants_json
from services.invite_service.api.rate_limits import FailureLimiter
from services.invite_service.application import PortalAccess
from services.invite_service.domain.errors import DomainError, LinkInvalid
from services.invite_service.domain.workspace import DEFAULTS

__all__ = ["LINK_INVALID_RESPONSES", "brand", "link_invalid", "refused", "templates", "wants_json"]

LINK_INVALID_RESPONSES: dict[int | str, dict[str, Any]] = {
    410: {
        "description": "Used, expired or voided by a newer link (`link_invalid`): a page offering the sign-in "
        "form, or problem details for `Accept: application/json`",
        "content": {"text/html": {}, PROBLEM_JSON: {"schema": PROBLEM_REF}},
    },
    429: {
        "description": "This address opened too many invalid links in the last minute (`too_many_attempts`); "
        "see Retry-After",
        "content": {"text/html": {}, PROBLEM_JSON: {"schema": PROBLEM_REF}},
    },
}

NEUTRAL = {"workspace_name": "Client portal", "sender_name": "the sender", "logo_url": None,
           "brand_color": DEFAULTS["branding"]["brand_color"]}


async def look(access: PortalAccess, ws: str) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """(branding, sign-in method, settings) of the workspace; neutral for an unknown one,
    revealing nothing."""
    try:
        workspace = await run_in_threadpool(access.get_workspace, ws)
    except DomainError:
        return NEUTRAL, None, dict(DEFAULTS)
    return workspace.sender, workspace.settings["sign_in_method"], workspace.settings


async def brand(access: PortalAccess, ws: str) -> dict[str, Any]:
    return (await look(access, ws))[0]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def refused(request: Request, failures: FailureLimiter, access: PortalAccess, ws: str) -> Response | None:
    """429 once this client has opened too many invalid links (see rate_limits.py), else None."""
    problem = await failures.check(_client(request))
    if problem is None:
        return None
    if wants_json(request):
        return problem_response(problem, request)
    ctx = {"brand": await brand(access, ws), "retry_after": problem.headers["Retry-After"]}
    return templates.TemplateResponse(request, "too_many_attempts.html", ctx, status_code=429, headers=problem.headers)


async def link_invalid(request: Request, failures: FailureLimiter, access: PortalAccess, ws: str) -> Response:
    """The one answer to every link that opens nothing; counted toward the client's limit.
    The page offers the sign-in form: a used link is usually a client who wants back in."""
    await failures.failed(_client(request))
    if wants_json(request):
        return problem_response(Problem(410, LinkInvalid.code, "Link invalid", LinkInvalid.detail), request)
    sender, method, _ = await look(access, ws)
    return render(request, access, ws, "link_invalid.html", {"brand": sender, "method": method},
                  status_code=410)
