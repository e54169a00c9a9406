"""An aggregate's stored events, as the relay publishes them: for consumers that repair a gap.

The relay publishes each account's events in order, so a consumer that sees an aggregate's
version jump has lost a message. It cannot read the event store's bytes itself (the read
side never imports the write side), so the composition root hands it this reader: the
missing versions, decoded by the library's mapper and turned into the same envelopes the
relay would have sent (same `event_id`, same `position`).
"""

from __future__ import annotations

import asyncpg
from eventsourcing.persistence import Mapper, StoredEvent

from contracts.access import AccessEventV1
from services.common.database import EVENT_STORE_NAME
from services.invite_service.envelopes import to_envelope


class StoredEnvelopes:
    def __init__(self, mapper: Mapper, pool: asyncpg.Pool) -> None:
        self._mapper = mapper
        self._pool = pool

    async def __call__(self, seen: AccessEventV1, versions: list[int]) -> list[AccessEventV1]:
        """The envelopes of `versions` of `seen`'s aggregate that the store holds, oldest first."""
        rows = await self._pool.fetch(
            f"SELECT originator_version, topic, state, notification_id FROM {EVENT_STORE_NAME}_events "
            "WHERE originator_id = $1 AND originator_version = ANY($2::bigint[]) ORDER BY originator_version",
            seen.aggregate_id,
            versions,
        )
        # A later event of an aggregate belongs to the same workspace and account as `seen`.
        origin = (seen.workspace, seen.account_id)
        return [
            to_envelope(
                self._mapper.to_domain_event(StoredEvent(
                    originator_id=seen.aggregate_id, originator_version=row["originator_version"],
                    topic=row["topic"], state=bytes(row["state"]),
                )),
                row["notification_id"],
                origin,
            )
            for row in rows
        ]


def event_store_reader(database_url: str, pool: asyncpg.Pool) -> StoredEnvelopes:
    """The reader for a consumer process (blocking: builds the Application for its mapper,
    which decodes exactly as the write side encodes, compression or cipher included)."""
    from services.common.database import eventsourcing_env
    from services.invite_service.application import PortalAccess

    return StoredEnvelopes(PortalAccess(eventsourcing_env(database_url)).mapper, pool)
