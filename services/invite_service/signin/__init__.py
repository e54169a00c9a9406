"""Client sign-in's own tables: password hashes, hand-off codes, rate-limit windows. Rows,
not events: they can be deleted, and none of them ever reaches the log or Kafka."""
