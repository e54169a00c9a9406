"""`porchlight.audit.v1`: the head of the audit chain over the event store, published regularly.

A copy of the chain's head outside the database: someone able to rewrite both the stored
events and the `audit_chain` table cannot also rewrite what consumers of this topic (and
the broker's retention) already hold, so `porchlight audit verify` catches them by
comparing its recomputed chain with these heads. Key: `log` (one chain, one partition,
in order). Holds hashes and positions only, never an event's content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

KEY = b"log"


class AuditHeadV1(BaseModel):
    # Tolerant reader, as for the other contracts: fields added within v1 are ignored.
    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    position: int = Field(ge=1, description="Notification-log position of the last event chained", examples=[4213])
    hash: str = Field(
        pattern="^[0-9a-f]{64}$",
        description="Hex SHA-256 chain hash at `position` (see services/common/audit_chain.py for what it covers)",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    at: datetime = Field(description="When the head was published")

    @property
    def key(self) -> bytes:
        return KEY
