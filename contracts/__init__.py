"""Every message that crosses a process boundary, as pydantic models.

Consumers import these and nothing else of another service. One module per topic.
"""

from contracts.access import AccessEventV1, Actor
from contracts.deliveries import DeliveryOutcomeV1

__all__ = ["AccessEventV1", "Actor", "DeliveryOutcomeV1"]
