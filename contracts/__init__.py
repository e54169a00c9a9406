"""Every message that crosses a process boundary, as pydantic models.

Consumers import these and nothing else of another service. One module per topic.
"""

from contracts.access import (
    ENVELOPES,
    PAYLOADS,
    TYPE_HEADER,
    AccessEventV1,
    Actor,
    KnownAccessEventV1,
    parse_access_event,
)
from contracts.deliveries import DeliveryOutcomeV1
from contracts.shares import TripShareV1

__all__ = [
    "ENVELOPES",
    "PAYLOADS",
    "TYPE_HEADER",
    "AccessEventV1",
    "Actor",
    "DeliveryOutcomeV1",
    "KnownAccessEventV1",
    "TripShareV1",
    "parse_access_event",
]
