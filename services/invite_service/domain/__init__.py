"""Aggregates and their errors. Imports only the standard library and eventsourcing.domain."""
