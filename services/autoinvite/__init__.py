"""`porchlight autoinvite`: the consumer of upstream `trips.shares.v1` events (auto-invite on first share)."""
