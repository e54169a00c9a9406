"""What a stored event says about itself without its contract: its id and its aggregate's origin.

Kept apart from `envelopes` (which imports every contract, pydantic models and all) so that
replay's worker processes, which decode stored events into facts, start without them.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

Origin = tuple[str, UUID | None]  # (workspace slug, account id or None for workspace events)


def event_id_hex(namespace: bytes, aggregate_id: UUID | str, version: int) -> str:
    """`contracts.access.event_id_for` (a uuid5 in `namespace`: EVENT_ID_NAMESPACE's bytes) as its
    32 hex digits, without building UUIDs: replay writes a hundred thousand of them straight
    into a uuid column. The aggregate id may be given as its text already (replay's raw pages
    read it so), which saves formatting it."""
    digest = bytearray(hashlib.sha1(b"%s%s/%d" % (namespace, str(aggregate_id).encode(), version)).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest[:16].hex()


def origin_of_fields(fields: Any, originator_id: UUID) -> Origin:
    """Workspace and account of an aggregate, from its first event's fields (a domain event's
    attributes, or its stored state)."""
    if "slug" in fields:  # WorkspaceCreated
        return fields["slug"], None
    if "trip_id" in fields:  # TripFirstShared: a trip belongs to no account
        return fields["workspace"], None
    if "account_id" in fields:  # InviteSent: an invitation belongs to an account
        return fields["workspace"], fields["account_id"]
    return fields["workspace"], originator_id  # AccountCreated
