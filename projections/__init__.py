"""The read side: consumes access and delivery events into asyncpg read models and serves them.

`consumer.create_projector` builds its brokers (one per consumer group) with the typed handlers of
`status_list` (applied a fetched batch per transaction by `batches`) and `deliveries`, `main.run`
runs the projector process, `query_api.router` serves the staff status list, its counts and the
active accounts as CSV (`queries` has the SQL), `positions` answers how far the projections got.
"""
