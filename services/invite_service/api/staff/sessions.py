"""The host app's side of the hand-off: after a sign-in the client arrives at the
workspace's `portal_url` with a one-time `code`; the host app exchanges it, server side
with its staff token, for the account and a session id it checks on later requests. The
session ends when the client signs out, the account is disabled or its password reset,
or it expires; the check then answers 404."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from services.common.problems import STAFF_AUTH_ERRORS, Problem, problem_responses
from services.invite_service import sessions
from services.invite_service.api.deps import ReadPool, Settings, StaffReader
from services.invite_service.api.schemas import Strict
from services.invite_service.signin import handoff

router = APIRouter(prefix="/v1/workspaces/{ws}/sessions", tags=["sessions"])


class ExchangeIn(Strict):
    code: str = Field(min_length=1, max_length=100, description="The `code` parameter of the redirect to portal_url")


class ResourceOut(BaseModel):
    type: str
    id: str


class SessionOut(BaseModel):
    session_id: UUID
    account_id: UUID
    email: str
    name: str | None
    role: str
    resources: list[ResourceOut]
    expires_at: datetime = Field(description="The absolute end; the session also ends earlier when idle or revoked")


def _out(found: sessions.Session) -> SessionOut:
    return SessionOut(session_id=found.session_id, account_id=found.account_id, email=found.email, name=found.name,
                      role=found.role, resources=found.resources, expires_at=found.expires_at)


def _gone() -> Problem:
    return Problem(404, "session_not_found", "No such session",
                   "No live session: it ended (signed out, disabled, reset), expired, or never existed.")


@router.post("/exchange", response_model=SessionOut, responses=problem_responses({
    **STAFF_AUTH_ERRORS, 410: "The code was used, expired (60 s) or never issued (`code_invalid`)"}))
async def exchange(body: ExchangeIn, staff: StaffReader, pool: ReadPool, settings: Settings,
                   ws: str = Path()) -> SessionOut:
    session_id = await handoff.redeem(pool, ws, body.code)
    found = None
    if session_id is not None:
        found = await sessions.by_id(pool, ws, session_id, timedelta(hours=settings.session_idle_hours))
    if found is None:
        raise Problem(410, "code_invalid", "Code invalid", "That code was used, has expired, or was never issued.")
    return _out(found)


@router.get("/{session_id}", response_model=SessionOut, responses=problem_responses({
    **STAFF_AUTH_ERRORS, 404: "Ended, expired or unknown (`session_not_found`)"}))
async def check(staff: StaffReader, pool: ReadPool, settings: Settings, ws: str = Path(),
                session_id: UUID = Path()) -> SessionOut:
    found = await sessions.by_id(pool, ws, session_id, timedelta(hours=settings.session_idle_hours))
    if found is None:
        raise _gone()
    return _out(found)


@router.delete("/{session_id}", status_code=204, response_class=Response, responses=problem_responses({
    **STAFF_AUTH_ERRORS, 404: "Already ended or unknown (`session_not_found`)"}))
async def end(staff: StaffReader, pool: ReadPool, ws: str = Path(), session_id: UUID = Path()) -> Response:
    if not await sessions.end_by_id(pool, ws, session_id):
        raise _gone()
    return Response(status_code=204)
