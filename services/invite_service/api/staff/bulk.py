"""`POST /v1/workspaces/{ws}/invitations/bulk`: up to 10,000 invites, JSON or CSV, one result per row.

Each row is validated with the single invite's model and answers the same error code and
message it would answer alone; a bad row never stops the others. Rows whose account
exists (or that repeat an email earlier in the same bulk) are `duplicate`, so a re-sent
bulk creates nothing twice. The rows that pass are committed together (many per
transaction, see `PortalAccess.invite_many`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import ValidationError

from services.common.metrics import INVITES
from services.common.problems import STAFF_AUTH_ERRORS, problem_responses
from services.invite_service.api.deps import Access, StaffWriter
from services.invite_service.api.errors import validation_problem
from services.invite_service.api.idempotency import Idempotent
from services.invite_service.api.schemas import BulkInvitationsOut, InvitationIn, RowError
from services.invite_service.api.staff import bulk_rows
from services.invite_service.api.staff.invite_input import to_command
from services.invite_service.application import InviteCommand

router = APIRouter()
log = logging.getLogger(__name__)

CSV_TYPE = "text/csv"
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["invitations"],
                "additionalProperties": False,
                "properties": {
                    "invitations": {
                        "type": "array",
                        "maxItems": bulk_rows.MAX_ROWS,
                        "items": {"$ref": "#/components/schemas/InvitationIn"},
                    }
                },
            }
        },
        CSV_TYPE: {
            "schema": {"type": "string"},
            "example": "email,name,role,phone,resources,channels\n"
            "ana@example.com,Ana Lima,charter_client,+14155550123,trip:T1;project:P2,email;sms\n",
        },
    },
}
_DESCRIPTION = """One result per row, in input order: `created` (with `account_id`), `duplicate`
(an account with this email exists, or the email appeared earlier in this bulk) or `invalid`
(with the `error` code and message the same row would get as a single invite).

CSV: UTF-8, a header row naming the invite's fields in any order (`email`, `name`, `role`,
`company`, `phone`, `contact_id`, `resources`, `channels`), one contact per line. An empty cell
leaves the field out. `resources` is `type:id` items separated by `;` (`trip:T1;project:P2`);
`channels` is `email`, `sms` or `email;sms`. Blank lines are skipped. A line with more cells than
the header is an invalid row (`malformed_row`).

The body may be larger than other routes' (MAX_BULK_BODY_BYTES)."""


@router.post(
    "/bulk",
    response_model=BulkInvitationsOut,
    summary="Invite up to 10,000 contacts (JSON or CSV)",
    description=_DESCRIPTION,
    dependencies=[Idempotent],
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses=problem_responses({
        **STAFF_AUTH_ERRORS,
        400: "The body is not valid JSON (`malformed_json`) or CSV (`malformed_csv`)",
        403: "Portal off (`portal_disabled`), plan below Pro (`plan_required`), or a read-only role (`forbidden_role`)",
        409: "A request with this Idempotency-Key is still running (`request_in_progress`)",
        413: "The body is larger than MAX_BULK_BODY_BYTES (`body_too_large`)",
        415: "Neither JSON nor CSV (`unsupported_media_type`)",
        422: "Not `{\"invitations\": [...]}` (`validation_error`), more than 10,000 rows (`too_many_rows`),"
        " a CSV column that is no invite field (`unknown_column`), or an Idempotency-Key used for another"
        " request (`idempotency_key_reused`)",
    }),
)
async def invite_bulk(request: Request, staff: StaffWriter, access: Access, ws: str = Path()) -> Response:
    body = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # Parsing and validating 10,000 rows is CPU work: off the event loop, so other requests keep moving.
    parsed = await asyncio.to_thread(_parse, body, media_type == CSV_TYPE)
    outcomes = await access.invite_many(ws, [c for _, c in parsed if isinstance(c, InviteCommand)], staff.actor)
    # The answer is built as plain JSON, not as 10,000 BulkRowResult models that FastAPI would
    # validate again on the way out: that was a tenth of a bulk's CPU. Its shape is
    # BulkInvitationsOut's (the route's response_model, for the docs); tests check it.
    results: list[dict[str, Any]] = []
    counts = dict.fromkeys(("created", "duplicate", "invalid"), 0)
    stored = iter(outcomes)
    for email, command in parsed:
        if not isinstance(command, InviteCommand):
            results.append({"email": email, "status": "invalid", "account_id": None,
                            "error": {"code": command.code, "message": command.message}})
            counts["invalid"] += 1
            continue
        outcome = next(stored)
        error = {"code": outcome.error.code, "message": outcome.error.detail} if outcome.error else None
        account_id = str(outcome.account_id) if outcome.account_id is not None else None
        results.append({"email": email, "status": outcome.status, "account_id": account_id, "error": error})
        counts[outcome.status] += 1
    for status, count in counts.items():
        INVITES.labels(status if status == "created" else f"bulk_{status}").inc(count)
    positions = [o.position for o in outcomes if o.position is not None]
    log.info("bulk invite in %s by %s: %s", ws, staff.sub, counts)
    answer = {"results": results, **counts, "position": max(positions, default=None)}
    return Response(_JSON.encode(answer).encode(), media_type="application/json")


# As FastAPI's JSONResponse writes JSON.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _parse(body: bytes, is_csv: bool) -> list[tuple[str | None, InviteCommand | RowError]]:
    """Each row: its email as sent, and its command or why it is invalid."""
    rows = bulk_rows.rows_from_csv(body) if is_csv else bulk_rows.rows_from_json(body)
    return [_checked(row) for row in rows]


def _checked(row: bulk_rows.Row) -> tuple[str | None, InviteCommand | RowError]:
    if isinstance(row, bulk_rows.MalformedRow):
        return row.email, RowError(code=row.code, message=row.message)
    email = row.get("email") if isinstance(row, dict) else None
    email = email if isinstance(email, str) else None
    try:
        body = InvitationIn.model_validate(row)
    except ValidationError as exc:
        problem = validation_problem(list(exc.errors()))
        return email, RowError(code=problem.code, message=problem.detail or problem.title)
    return email, to_command(body)
