"""The staff read API over the projections: the status list and one account.

Mounted beside the write side's routers by the API process's composition root
(deploy/api_app.py), which provides what services/common/deps.py needs and installs the
Problem handler. Any staff role may read.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from projections import queries
from projections.views import AccountDetail, AccountPage, AccountState
from services.common.deps import ReadPool, StaffReader
from services.common.problems import Problem, problem_responses

router = APIRouter(
    prefix="/v1/workspaces/{ws}/accounts",
    tags=["accounts"],
    responses=problem_responses({
        401: "Missing, malformed or expired staff token (`unauthorized`)",
        404: "A token for another workspace (`not_found`), or no such account (`account_not_found`)",
        422: "Bad query parameter (`validation_error`, `invalid_filter`) or cursor (`invalid_cursor`)",
    }),
)


@router.get("", response_model=AccountPage, summary="The status list")
async def list_accounts(
    ws: str,
    staff: StaffReader,
    pool: ReadPool,
    status: Annotated[AccountState | None, Query(description="Only accounts in this state")] = None,
    email: Annotated[str | None, Query(max_length=320, description="Exact email, case-insensitive")] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Part of the name, email or company")
    ] = None,
    resource_type: Annotated[str | None, Query(
        max_length=64,
        description="Only accounts that may see this resource (`trip`, `project`, `customer`); needs "
        "resource_id too, alone it is refused with 422 `invalid_filter`",
    )] = None,
    resource_id: Annotated[str | None, Query(
        max_length=200,
        description="The resource's id; needs resource_type too, alone it is refused with 422 `invalid_filter`",
    )] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page")] = None,
) -> AccountPage:
    """Accounts of the workspace, newest invite first, one page at a time."""
    if (resource_type is None) != (resource_id is None):
        raise Problem(422, "invalid_filter", "Invalid filter", "Give resource_type and resource_id together.")
    filters = queries.AccountFilter(status, email, q, resource_type, resource_id)
    try:
        items, next_cursor = await queries.list_accounts(pool, ws, filters, limit, cursor)
    except queries.BadCursor:
        raise Problem(
            422, "invalid_cursor", "Invalid cursor", "Pass back the next_cursor of a previous page unchanged."
        ) from None
    return AccountPage.model_validate({"items": items, "next_cursor": next_cursor})


@router.get("/{account_id}", response_model=AccountDetail, summary="One account")
async def get_account(ws: str, account_id: uuid.UUID, staff: StaffReader, pool: ReadPool) -> AccountDetail:
    """An account's status, timestamps, deliveries and the actions allowed now."""
    account = await queries.get_account(pool, ws, account_id)
    if account is None:
        # Another workspace's account answers the same as a missing one: no existence leak.
        raise Problem(404, "account_not_found", "Not found", "No such account in this workspace.")
    return AccountDetail.model_validate(account)
