"""`POST /v1/workspaces/{ws}/accounts/{account_id}/{action}`: staff act on a portal account.

The answer is the account as the aggregate sees it right after the action, with the
`actions` it allows now (`PortalAccount.allowed_actions`: the one state machine), so a
host UI can render its adaptive button without a state machine of its own.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, Field

from services.common.problems import BODY_ERRORS, STAFF_AUTH_ERRORS, Problem, problem_responses
from services.invite_service.api.idempotency import Idempotent
from services.invite_service.api.deps import Access, StaffWriter
from services.invite_service.api.schemas import Strict
from services.invite_service.commands.lifecycle import ActionResult
from services.invite_service.domain.errors import TooManyResends

router = APIRouter(prefix="/v1/workspaces/{ws}/accounts", tags=["accounts"])
log = logging.getLogger(__name__)

Action = Literal["resend", "revoke", "disable", "reenable", "reactivate", "password-reset"]


class ActionIn(Strict):
    reason: str | None = Field(None, max_length=500, description="Why (disable only); kept with the account")


class AccountActionOut(BaseModel):
    account_id: UUID
    email: str
    name: str | None
    role: str
    status: Literal["pending", "active", "disabled"]
    actions: list[str] = Field(description="What staff may do now", examples=[["resend", "revoke"]])
    invitation_id: UUID = Field(description="The account's current invitation")
    invited_at: datetime = Field(description="When the account was first invited")
    last_invite_sent_at: datetime = Field(description="When the current invitation was sent")
    expires_at: datetime = Field(description="When the current invitation's link expires")
    activated_at: datetime | None = Field(description="When the current invitation was claimed")
    disabled_at: datetime | None
    disabled_by: str | None = Field(description="Staff id who disabled (or revoked) the account")
    disabled_reason: str | None
    position: int = Field(description="Event-store position of this write; the read side reports when it caught up")


def account_view(result: ActionResult) -> AccountActionOut:
    account, invitation = result.account, result.invitation
    return AccountActionOut(
        account_id=account.id,
        email=account.email,
        name=account.name,
        role=account.role,
        status=account.status,
        actions=account.allowed_actions,
        invitation_id=invitation.id,
        invited_at=account.created_on,
        last_invite_sent_at=invitation.created_on,
        expires_at=invitation.expires_at,
        activated_at=invitation.claimed_at,
        disabled_at=account.disabled_at,
        disabled_by=account.disabled_by,
        disabled_reason=account.disabled_reason,
        position=result.position,
    )


@router.post(
    "/{account_id}/{action}",
    response_model=AccountActionOut,
    # A retried action answers what the first answered: a client timing out on "resend" must
    # not mail the contact twice or use up the resend limit.
    dependencies=[Idempotent],
    summary="Act on a portal account",
    description=(
        "`resend` (pending: a fresh link, the old one dies), `revoke` (pending: cancel and disable), "
        "`disable` (active; optional `reason`), `reenable` (disabled: silently, password kept), "
        "`reactivate` (disabled: re-enable and send a fresh invite, atomically), `password-reset` (active)."
    ),
    responses=problem_responses({
        **STAFF_AUTH_ERRORS,
        **BODY_ERRORS,
        403: "Portal off (`portal_disabled`), plan below Pro (`plan_required`), or a read-only role (`forbidden_role`)",
        404: "A token for another workspace (`not_found`), or no such account in it (`account_not_found`)",
        409: "Not allowed in the account's current state (`invalid_state`; `allowed` lists what is)",
        422: "Unknown action, malformed account id, or a bad body (`validation_error`)",
        429: "More than 10 invite emails to this account in an hour (`too_many_resends`; see Retry-After)",
    }),
)
async def act(
    staff: StaffWriter,
    access: Access,
    account_id: UUID,
    action: Action,
    body: Annotated[ActionIn | None, Body()] = None,
    ws: str = Path(),
) -> AccountActionOut:
    reason = body.reason if body is not None and action == "disable" else None
    try:
        result = await access.act_on_account(ws, account_id, action, staff.actor, reason=reason)
    except TooManyResends as exc:
        retry_after = str(exc.extra["retry_after"])
        raise Problem(429, exc.code, "Too many resends", exc.detail, headers={"Retry-After": retry_after},
                      **exc.extra) from None
    log.info("%s on account %s in %s by %s", action, account_id, ws, staff.sub)
    return account_view(result)
