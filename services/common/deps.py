"""The `Annotated` dependencies both HTTP sides use: the write side's API and the read
side's query router, which the API process mounts together (deploy/api_app.py).

They live here because the read side must not import the write side; the write side's
own aliases (and these, re-exported) are in services/invite_service/api/deps.py. Whoever
builds the app sets `app.state.read_pool` (an asyncpg pool) and `app.state.staff_jwt_secret`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Depends, Request

from services.common.staff_auth import StaffClaims, staff_for_workspace, staff_settings_admin, staff_writer


async def read_pool(request: Request) -> asyncpg.Pool:  # async: no thread hop per request
    """The process's asyncpg pool: read models, and on the write side sessions and heartbeats."""
    return request.app.state.read_pool


ReadPool = Annotated[asyncpg.Pool, Depends(read_pool)]
StaffReader = Annotated[StaffClaims, Depends(staff_for_workspace)]
StaffWriter = Annotated[StaffClaims, Depends(staff_writer)]
StaffAdmin = Annotated[StaffClaims, Depends(staff_settings_admin)]


# `GET .../accounts/{id}?as_of=T` is served by the read side's route, but the answer comes
# from the event store: the composition root (deploy/api_app.py) sets this callable,
# (workspace, account id, time) -> contracts.account_state.AccountAsOf, blocking. None in an
# app with no event store (the query router served alone).
async def account_as_of(request: Request) -> Callable[[str, UUID, datetime], Any] | None:
    return getattr(request.app.state, "account_as_of", None)


AccountAsOfReader = Annotated[Callable[[str, UUID, datetime], Any] | None, Depends(account_as_of)]
