"""An account as it stood at a past time: the shape both read routes answer with `as_of`.

`GET .../accounts/{id}?as_of=T` (the read side's route) and `GET .../accounts/{id}/state?as_of=T`
(the write side's) give the same answer, computed on the write side by replaying the
account's events up to T (services/invite_service/point_in_time.py). It lives here because
the read side must not import the write side.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.access import Actor


class AccountAsOf(BaseModel):
    """An account as it stood at `as_of`."""

    model_config = ConfigDict(frozen=True)

    account_id: UUID
    as_of: datetime
    version: int = Field(description="The account's version at that time (its events up to then)")
    status: str = Field(examples=["pending"])
    email: str
    name: str | None
    role: str
    company: str | None = None
    phone: str | None = None
    resources: list[dict[str, str]] = Field(default_factory=list)
    invited_at: datetime
    invitation_id: UUID | None = Field(None, description="The invitation current at that time")
    expires_at: datetime | None = Field(None, description="When that invitation's link lapsed or lapses")
    activated_at: datetime | None = Field(None, description="First activation up to then")
    disabled_at: datetime | None = Field(None, description="When it was disabled, if it was disabled then")
    disabled_by: Actor | None = None
    disabled_reason: str | None = Field(None, description="Why, as staff typed it, if it was disabled then")
    actions: list[str] = Field(description="The actions that were allowed at that time")
