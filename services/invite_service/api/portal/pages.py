"""What every portal route shares: the templates, the workspace's branding, and the answers
for an invalid link and for a client over its failure limit (a page, or problem details
for `Accept: application/json`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from services.common.problems import PROBLEM_JSON, PROBLEM_REF, Problem, problem_response
from services.invite_service.api.rate_limits import FailureLimiter
from services.invite_service.application import PortalAccess
from services.invite_service.domain.errors import DomainError, LinkInvalid
from services.invite_service.domain.workspace import DEFAULTS

templates = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")

LINK_INVALID_RESPONSES: dict[int | str, dict[str, Any]] = {
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


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


async def brand(access: PortalAccess, ws: str) -> dict[str, Any]:
    try:
        return (await run_in_threadpool(access.get_workspace, ws)).sender
    except DomainError:  # unknown workspace: a neutral page, revealing nothing
        return {"workspace_name": "Client portal", "sender_name": "the sender", "logo_url": None,
                "brand_color": DEFAULTS["branding"]["brand_color"]}


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
    """The one answer to every link that opens nothing; counted toward the client's limit."""
    await failures.failed(_client(request))
    if wants_json(request):
        return problem_response(Problem(410, LinkInvalid.code, "Link invalid", LinkInvalid.detail), request)
    ctx = {"brand": await brand(access, ws)}
    return templates.TemplateResponse(request, "link_invalid.html", ctx, status_code=410)
