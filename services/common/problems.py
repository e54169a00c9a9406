"""RFC 9457 problem details: one shape for every HTTP error, with a stable `code`."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem-details body."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = extra.pop("headers", None) or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://porchlight.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field in the body or query; empty for the body itself")
    type: str = Field(description="Machine-readable reason", examples=["invalid_email"])
    message: str


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, as every error of the HTTP API answers (application/problem+json)."""

    type: str = Field(examples=["https://porchlight.dev/problems/duplicate_email"])
    title: str = Field(examples=["Duplicate email"])
    status: int = Field(examples=[409])
    code: str = Field(description="Stable code to branch on", examples=["duplicate_email"])
    detail: str | None = Field(None, examples=["This workspace already has a portal account for that email."])
    instance: str | None = Field(None, description="The request path")
    errors: list[FieldError] | None = Field(None, description="One entry per invalid field (422)")


PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}


def problem_responses(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status with its problem codes, in the OpenAPI document."""
    return {
        status: {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}
        for status, description in described.items()
    }


def problem_schemas() -> dict[str, Any]:
    """OpenAPI components for PROBLEM_REF (FastAPI adds only the models routes return)."""
    schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "ProblemDetails": schema}


STAFF_AUTH_ERRORS = {
    401: "Missing, malformed or expired staff token (`unauthorized`)",
    404: "A token for another workspace, or no such workspace (`not_found`)",
}
BODY_ERRORS = {
    400: "The body is not valid JSON (`malformed_json`)",
    413: "The body is larger than MAX_BODY_BYTES (`body_too_large`)",
    415: "The body is not JSON (`unsupported_media_type`)",
}


# Portal paths carry claim and sign-in tokens, and problem bodies end up in client logs:
# their problems never name the path as `instance`.
TOKEN_PATHS = "/portal/"


def instance_of(path: str) -> str | None:
    return None if path.startswith(TOKEN_PATHS) else path


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    instance = instance_of(request.url.path) if request is not None else None
    return JSONResponse(problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


async def handle_problem(request: Request, exc: Problem) -> JSONResponse:
    return problem_response(exc, request)


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "not_found", "Not found", f"No such {what}.")
