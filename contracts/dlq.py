"""`porchlight.dlq.v1`: messages a consumer could never handle, kept for a person to look at.

The value and key are the original message's bytes, unchanged (it may not even be JSON);
where it came from and why it was refused travel in these Kafka headers.
"""

CONSUMER = "dlq-consumer"  # which consumer refused it, e.g. "notifier", "projector"
TOPIC = "dlq-topic"  # the topic it was read from
PARTITION = "dlq-partition"
OFFSET = "dlq-offset"
REASON = "dlq-reason"  # the validation error, truncated to 2,000 characters

HEADERS = (CONSUMER, TOPIC, PARTITION, OFFSET, REASON)
