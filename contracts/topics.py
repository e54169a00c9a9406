"""Topic names of API.md. Keys: account id for access and deliveries, trip id for shares, `log` for audit."""

ACCESS = "porchlight.access.v1"
DELIVERIES = "porchlight.deliveries.v1"
TRIP_SHARES = "trips.shares.v1"
DLQ = "porchlight.dlq.v1"
AUDIT = "porchlight.audit.v1"

ALL = (ACCESS, DELIVERIES, TRIP_SHARES, DLQ, AUDIT)
