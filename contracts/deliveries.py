"""`porchlight.deliveries.v1`: the outcome of each message the notifier sent or tried to."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DeliveryOutcomeV1(BaseModel):
    # Tolerant reader, as for AccessEventV1: fields added within v1 are ignored.
    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    delivery_id: uuid.UUID = Field(description="Stable per (event, channel): a re-published outcome has the same id")
    event_id: uuid.UUID = Field(description="The access event that caused this delivery")
    account_id: uuid.UUID
    workspace: str
    channel: Literal["email", "sms"]
    provider: str = Field(examples=["smtp", "postmark"])
    # Added within v1: "retrying" (a transient failure; attempt n+1 follows), "abandoned" (the
    # last attempt failed), "delivered" and "bounced" (what the provider reported afterwards,
    # for the same attempt).
    status: Literal["sent", "failed", "suppressed", "retrying", "abandoned", "delivered", "bounced"]
    attempt: int = Field(ge=1)
    error: str | None = None
    at: datetime
    # Added within v1: set when the recipient's address is held from email (a hard bounce or an
    # inactive recipient put it on the suppression list, or this message found it there), until
    # staff resend.
    held: str | None = Field(None, description="Why email to this address is held, if it is")
    audience: Literal["client", "team"] = Field("client", description="To the account's client, or about them to the team")

    @property
    def key(self) -> bytes:
        return str(self.account_id).encode()
