"""The staff read API over the projections: the status list, its counts, the active
accounts as CSV, and one account.

Mounted beside the write side's routers by the API process's composition root
(deploy/api_app.py), which provides what services/common/deps.py needs and installs the
Problem handler. Any staff role may read. Every read takes `min_position` (a position a
command answered) and waits, briefly, until the projection has applied it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import AwareDatetime

from contracts.account_actions import allowed_actions
from contracts.account_state import AccountAsOf
from projections import positions, queries, travelers
from projections.views import AccountCounts, AccountDetail, AccountPage, AccountState, TripTravelers
from services.common.deps import AccountAsOfReader, ReadPool, StaffReader
from services.common.problems import Problem, problem_responses

CATCH_UP_SECONDS = 2.0  # how long a read waits for its `min_position`
RETRY_AFTER_SECONDS = 1

router = APIRouter(
    prefix="/v1/workspaces/{ws}/accounts",
    tags=["accounts"],
    responses=problem_responses({
        401: "Missing, malformed or expired staff token (`unauthorized`)",
        404: "A token for another workspace (`not_found`), or no such account (`account_not_found`)",
        422: "Bad query parameter (`validation_error`, `invalid_filter`) or cursor (`invalid_cursor`)",
        503: "The projection has not applied `min_position` yet (`not_caught_up`, with Retry-After)",
    }),
)


async def caught_up(
    staff: StaffReader,  # first: a stranger gets 401 at once, not after the wait
    pool: ReadPool,
    min_position: Annotated[int | None, Query(
        ge=1,
        description="A `position` a command answered: the read waits (up to 2 s) until the projection has "
        "applied it, so it shows your own write; 503 `not_caught_up` with Retry-After if it has not",
    )] = None,
) -> None:
    if min_position is None:
        return
    if not await positions.wait_until_applied(pool, positions.STATUS_LIST, min_position, timeout=CATCH_UP_SECONDS):
        raise Problem(
            503, "not_caught_up", "Not caught up",
            f"The list has not caught up with position {min_position} yet; try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


CaughtUp = Depends(caught_up)


# Registered before `/{account_id}`, so these paths are never taken for an account id.
@router.get("/summary", response_model=AccountCounts, summary="Counts per status", dependencies=[CaughtUp])
async def summary(ws: str, staff: StaffReader, pool: ReadPool) -> AccountCounts:
    """How many accounts of the workspace are not invited, pending (and of those, with a
    lapsed link), active and disabled."""
    return AccountCounts.model_validate(await queries.count_by_status(pool, ws))


@router.get(
    "/active.csv",
    summary="Active accounts as CSV",
    dependencies=[CaughtUp],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per active account, by name, "
                     "with a header row: " + ", ".join(queries.ACTIVE_COLUMNS)}},
)
async def active_csv(ws: str, staff: StaffReader, pool: ReadPool) -> StreamingResponse:
    """Who has an active portal account right now, as a CSV download, streamed (any size).

    `resources` is `type:id` pairs joined by `;`.
    """
    return StreamingResponse(
        _csv_rows(pool, ws),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{ws}-active-accounts.csv"'},
    )


async def _csv_rows(pool, ws: str) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(queries.ACTIVE_COLUMNS)
    async for row in queries.active_accounts(pool, ws):
        writer.writerow([_cell(column, row[column]) for column in queries.ACTIVE_COLUMNS])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column == "resources":
        items = json.loads(value) if isinstance(value, str) else value
        value = ";".join(f"{item['type']}:{item['id']}" for item in items)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    # A spreadsheet runs a cell that starts like a formula: names and companies come from staff input.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("", response_model=AccountPage, summary="The status list", dependencies=[CaughtUp])
async def list_accounts(
    ws: str,
    staff: StaffReader,
    pool: ReadPool,
    status: Annotated[AccountState | None, Query(description="Only accounts in this state")] = None,
    link_expired: Annotated[bool | None, Query(
        description="`true`: only pending accounts whose newest link has lapsed (invited, never claimed); "
        "`false`: all others"
    )] = None,
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
    sort: Annotated[queries.Sort, Query(
        description="`invited_at` (the first invite), `name` (case-insensitive; the email when there is no "
        "name) or `last_sign_in_at` (never signed in counts as earliest)"
    )] = "invited_at",
    order: Annotated[queries.Order, Query(description="Direction of `sort`")] = "desc",
    limit: Annotated[int, Query(ge=1, le=200, description="Page size")] = 50,
    cursor: Annotated[str | None, Query(
        max_length=512, description="`next_cursor` of the previous page, with the same `sort` and `order`"
    )] = None,
) -> Response:
    """Accounts of the workspace, one page at a time (newest invite first unless sorted otherwise).

    Pages are by keyset on the sort key and the account id: accounts added while someone pages
    never make a page repeat or skip a row.
    """
    if (resource_type is None) != (resource_id is None):
        raise Problem(422, "invalid_filter", "Invalid filter", "Give resource_type and resource_id together.")
    filters = queries.AccountFilter(status, email, q, resource_type, resource_id, link_expired)
    try:
        items, next_cursor = await queries.list_accounts(
            pool, ws, filters, limit, cursor, queries.Ordering(sort, order)
        )
    except queries.BadCursor:
        raise Problem(
            422, "invalid_cursor", "Invalid cursor",
            "Pass back the next_cursor of a previous page unchanged, with the same sort and order.",
        ) from None
    # Validated once and written by pydantic's own serialiser: FastAPI would validate the page a
    # second time against response_model and encode it again, for up to 200 rows.
    return _json(AccountPage.model_validate({"items": items, "next_cursor": next_cursor}))


def _json(model: AccountPage | AccountDetail) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/{account_id}", response_model=AccountDetail | AccountAsOf, summary="One account",
            dependencies=[CaughtUp])
async def get_account(
    ws: str,
    account_id: uuid.UUID,
    staff: StaffReader,
    pool: ReadPool,
    state_as_of: AccountAsOfReader,
    as_of: Annotated[AwareDatetime | None, Query(
        description="RFC 3339 time with its offset (`Z`, or `+HH:MM` with the `+` encoded as `%2B`): the "
        "account as it stood then, replayed from the event store (the `AccountAsOf` shape, as "
        "`.../state?as_of=`); 404 `account_not_found` if it did not exist yet",
    )] = None,
) -> Response | AccountAsOf:
    """An account's access tab: its state, the actions allowed now, timestamps, recent
    sign-ins and delivery attempts. With `as_of`, its state at that time from the event store."""
    if as_of is not None:
        if state_as_of is None:
            raise Problem(501, "not_available", "Not available", "This server has no event store to read `as_of` from.")
        # The event store is read through the library's synchronous driver: off the event loop.
        return await asyncio.to_thread(state_as_of, ws, account_id, as_of)
    account = await queries.get_account(pool, ws, account_id)
    if account is None:
        # Another workspace's account answers the same as a missing one: no existence leak.
        raise Problem(404, "account_not_found", "Not found", "No such account in this workspace.")
    return _json(AccountDetail.model_validate(account))


# The travelers strip of a trip page: its own prefix, so the API's composition root mounts it too.
trips_router = APIRouter(
    prefix="/v1/workspaces/{ws}/trips",
    tags=["trips"],
    responses=problem_responses({
        401: "Missing, malformed or expired staff token (`unauthorized`)",
        404: "A token for another workspace (`not_found`)",
        422: "Bad query parameter (`validation_error`)",
        503: "The projection has not applied `min_position` yet (`not_caught_up`, with Retry-After)",
    }),
)


@trips_router.get(
    "/{trip_id}/travelers", response_model=TripTravelers, summary="A trip's travelers", dependencies=[CaughtUp]
)
async def trip_travelers(ws: str, trip_id: str, staff: StaffReader, pool: ReadPool) -> TripTravelers:
    """The travelers seen in the trip's share events (`trips.shares.v1`), each with their portal
    status for the pill beside them and the `actions` for the adaptive button. A trip never
    shared has none."""
    rows = await travelers.trip_travelers(pool, ws, trip_id)
    for row in rows:
        row["actions"] = allowed_actions(row["status"])
    return TripTravelers.model_validate({"trip_id": trip_id, "travelers": rows})
