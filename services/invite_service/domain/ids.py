"""Ids derived from natural keys, so uniqueness is enforced by the event store itself.

Two invites of one email in one workspace derive the same account id; the second save
collides on (originator_id, version 1) and becomes a `duplicate_email` error, with no
lookup table to race on.
"""

from uuid import UUID, uuid5

NAMESPACE = UUID("3c9f7c2e-8a4b-4f0e-b1f4-5d2b9e6a7c10")


def workspace_id(slug: str) -> UUID:
    return uuid5(NAMESPACE, f"/workspaces/{slug}")


def account_id(workspace: str, normalised_email: str) -> UUID:
    return uuid5(NAMESPACE, f"/workspaces/{workspace}/emails/{normalised_email}")


def trip_id(workspace: str, trip: str) -> UUID:
    """One Trip aggregate per (workspace, upstream trip id): two first shares collide on it."""
    return uuid5(NAMESPACE, f"/workspaces/{workspace}/trips/{trip}")
