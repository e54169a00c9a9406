"""`PUT`/`DELETE /v1/workspaces/{ws}/staff/{staff_id}/gmail`: connect or disconnect a staff
member's Gmail, so their manual invites go out from their own mailbox.

The token is a secret: it is sealed before it is stored (services/common/gmail_tokens.py), never
echoed, and never becomes an event (the event log is forever and replicated to Kafka). Owners,
admins and dispatchers may connect anyone's; every staff member may connect their own.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, model_validator

from services.common.gmail_tokens import GmailToken, GmailTokens, TokenSeal
from services.common.problems import BODY_ERRORS, STAFF_AUTH_ERRORS, Problem, problem_responses
from services.common.staff_auth import StaffClaims
from services.invite_service.api.deps import Access, ReadPool, Settings, StaffReader

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/workspaces/{ws}/staff/{staff_id}", tags=["staff gmail"])

StaffId = Annotated[str, Path(min_length=1, max_length=200, description="The staff member's id (their token's `sub`)")]
OAuthToken = Annotated[SecretStr, Field(min_length=1, max_length=8192)]


class GmailConnectionIn(BaseModel):
    """What the host app got from Google's OAuth flow (scope gmail.send)."""

    model_config = ConfigDict(extra="forbid")

    access_token: OAuthToken = Field(description="The OAuth access token; stored encrypted, never echoed")
    refresh_token: OAuthToken | None = Field(None, description="Kept encrypted for the host app's future use")
    expires_at: AwareDatetime | None = Field(None, description="When the access token expires (RFC 3339 with offset)")
    expires_in: int | None = Field(None, ge=1, description="Or: seconds until it expires, as Google's token response says")

    @model_validator(mode="after")
    def _one_expiry(self) -> GmailConnectionIn:
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError("give expires_at or expires_in, not both")
        return self

    def expiry(self) -> datetime | None:
        if self.expires_in is not None:
            return datetime.now(UTC) + timedelta(seconds=self.expires_in)
        return self.expires_at


class GmailConnectionOut(BaseModel):
    staff_id: str
    connected: bool = Field(description="True: this staff member's manual invites go out through their Gmail")
    expires_at: datetime | None


_ERRORS = {
    **STAFF_AUTH_ERRORS,
    403: "Agents and viewers may connect only their own Gmail (`forbidden_role`)",
    404: "A token for another workspace (`not_found`), or no such workspace (`workspace_not_found`)",
}


@lru_cache(maxsize=4)
def _seal(secret_key: str) -> TokenSeal:
    return TokenSeal(secret_key.encode())


async def _allowed(ws: str, staff_id: str, staff: StaffClaims, access: Access) -> None:
    if staff_id != staff.sub and not staff.can_write:
        raise Problem(403, "forbidden_role", "Forbidden", f"The {staff.role} role may connect only its own Gmail.")
    await asyncio.to_thread(access.get_workspace, ws)  # 404 workspace_not_found for a workspace never set up


@router.put("/gmail", response_model=GmailConnectionOut, summary="Connect a staff member's Gmail",
            responses=problem_responses({
                **_ERRORS, **BODY_ERRORS, 422: "A missing token or a bad expiry (`validation_error`)",
            }))
async def connect_gmail(ws: str, staff_id: StaffId, body: GmailConnectionIn, staff: StaffReader, access: Access,
                        pool: ReadPool, settings: Settings) -> GmailConnectionOut:
    """Stores the token encrypted, replacing one connected before; answers without it."""
    await _allowed(ws, staff_id, staff, access)
    token = GmailToken(
        body.access_token.get_secret_value(),
        body.refresh_token.get_secret_value() if body.refresh_token else None,
        body.expiry(),
    )
    tokens = GmailTokens(pool, _seal(settings.porchlight_secret_key.get_secret_value()))
    await tokens.put(ws, staff_id, token, connected_by=staff.sub)
    log.info("gmail connected for %s/%s by %s", ws, staff_id, staff.sub)
    return GmailConnectionOut(staff_id=staff_id, connected=True, expires_at=token.expires_at)


@router.delete("/gmail", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Disconnect a staff member's Gmail", responses=problem_responses(_ERRORS))
async def disconnect_gmail(ws: str, staff_id: StaffId, staff: StaffReader, access: Access, pool: ReadPool,
                           settings: Settings) -> Response:
    """Deletes the stored token; their invites go through the workspace's provider again. 204 also
    when nothing was connected, so a retried DELETE answers the same."""
    await _allowed(ws, staff_id, staff, access)
    tokens = GmailTokens(pool, _seal(settings.porchlight_secret_key.get_secret_value()))
    if await tokens.delete(ws, staff_id):
        log.info("gmail disconnected for %s/%s by %s", ws, staff_id, staff.sub)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
