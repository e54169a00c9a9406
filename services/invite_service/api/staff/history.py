"""History and point-in-time state, from the event store: any staff role may read them.

`GET .../accounts/{account_id}/history`, `GET /v1/workspaces/{ws}/history` and
`GET .../accounts/{account_id}/state?as_of=T`. Plain `def` routes: the event store is
read through the library's synchronous recorder, in FastAPI's thread pool.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from services.common.problems import STAFF_AUTH_ERRORS, problem_responses
from services.invite_service import history
from services.invite_service.api.deps import Access, StaffReader
from services.invite_service.point_in_time import AccountAsOf, account_as_of

router = APIRouter(prefix="/v1/workspaces/{ws}", tags=["history"])

_ACCOUNT_ERRORS = problem_responses({
    **STAFF_AUTH_ERRORS,
    404: "A token for another workspace (`not_found`), or no such account in this workspace (`account_not_found`)",
    422: "A malformed id, or a time without its offset (`validation_error`)",
})


@router.get("/accounts/{account_id}/history", response_model=history.History, summary="An account's history",
            responses=_ACCOUNT_ERRORS)
def account_history(ws: str, account_id: UUID, staff: StaffReader, access: Access) -> history.History:
    """Every event of the account and of its invitations, oldest first, with who caused it."""
    return history.History(events=history.account_history(access, ws, account_id))


@router.get("/history", response_model=history.History, summary="The workspace's history",
            responses=problem_responses({
                **STAFF_AUTH_ERRORS,
                404: "A token for another workspace (`not_found`), or no such workspace (`workspace_not_found`)",
            }))
def workspace_history(ws: str, staff: StaffReader, access: Access) -> history.History:
    """The workspace's own events, oldest first: its creation and each settings change, with who made it."""
    return history.History(events=history.workspace_history(access, ws))


@router.get("/accounts/{account_id}/state", response_model=AccountAsOf, summary="An account's state at a time",
            responses=_ACCOUNT_ERRORS)
def account_state(
    ws: str,
    account_id: UUID,
    staff: StaffReader,
    access: Access,
    as_of: Annotated[AwareDatetime | None, Query(
        description="RFC 3339 time with its offset (`Z`, or `+HH:MM` with the `+` encoded as `%2B`); default: now",
    )] = None,
) -> AccountAsOf:
    """The account as it stood at `as_of`, replayed from its events up to then; 404 if it did not exist yet."""
    return account_as_of(access, ws, account_id, as_of or datetime.now(UTC))
