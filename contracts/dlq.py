"""`porchlight.dlq.v1`: messages a consumer could never handle, kept for a person to look at.

The value and key are the original message's bytes, unchanged (it may not even be JSON);
where it came from and why it was refused travel in these Kafka headers. Once the cause is
fixed, a person re-publishes the value with its key to the topic it came from.
"""

CONSUMER = "dlq-consumer"  # which consumer refused it, e.g. "notifier", "projector"
TOPIC = "dlq-topic"  # the topic it was read from
PARTITION = "dlq-partition"
OFFSET = "dlq-offset"
REASON = "dlq-reason"  # the error, truncated to 2,000 characters
# `unprocessable` (no retry could fix it), `transient` (deadlock, serialization failure),
# `unexpected` (a bug) or `outage` (a dependency failed only for this message while it answered):
# see services/common/consumer_errors.py.
CATEGORY = "dlq-category"
ATTEMPTS = "dlq-attempts"  # how often the consumer tried it before giving up

HEADERS = (CONSUMER, TOPIC, PARTITION, OFFSET, REASON, CATEGORY, ATTEMPTS)
