"""`porchlight publish-share`: publish one `trips.shares.v1` event, as an upstream trip service would.

    porchlight publish-share --workspace demo --trip T-1 --kind invoice \\
        --traveler 'Ana Lima <ana@example.com>' --primary --traveler 'Ben <ben@example.com>'

For trying auto-invite by hand against `porchlight dev` (source its dev.env for
KAFKA_BOOTSTRAP_SERVERS); it prints the event it published.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import topics
from contracts.shares import Traveler, TripShareV1
from services.common.kafka import create_producer

class ShareProducerSettings(BaseSettings):
    """Only the broker: publishing needs no database."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)
    kafka_bootstrap_servers: str
    trip_shares_topic: str = topics.TRIP_SHARES


_NAMED = re.compile(r"^\s*(?P<name>[^<]*?)\s*<(?P<email>[^>]*)>\s*$")


def parse_traveler(text: str, *, primary: bool = False) -> Traveler:
    """'Ana Lima <ana@example.com>', a bare 'ana@example.com', or a bare name (a traveler without email)."""
    named = _NAMED.match(text)
    if named:
        return Traveler(name=named["name"] or None, email=named["email"].strip() or None, primary=primary)
    text = text.strip()
    if "@" in text:
        return Traveler(email=text, primary=primary)
    return Traveler(name=text or None, primary=primary)


async def publish(
    settings: ShareProducerSettings, workspace: str, trip: str, kind: str, travelers: list[Traveler],
    shared_by: str | None = None,
) -> TripShareV1:
    try:
        share = TripShareV1(
            event_id=uuid.uuid4(), workspace=workspace, trip_id=trip, kind=kind, shared_by=shared_by,
            occurred_at=datetime.now(UTC), travelers=travelers,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ValueError(str(exc)) from None
    producer = create_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(settings.trip_shares_topic, share.model_dump_json().encode(), key=share.key)
    finally:
        await producer.stop()
    return share
