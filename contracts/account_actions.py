"""What staff may do to a portal account in each state: the one table both sides read.

The write side's `PortalAccount` keeps its own table (aggregates import only the standard
library and eventsourcing.domain) and refuses the rest with 409 `invalid_state`; the read
side shows this one on every account view as `actions`. tests/unit/test_actions_agree.py
keeps the two equal, so a host UI's adaptive button never offers what the aggregate refuses.

Each action is a path segment: `POST /v1/workspaces/{ws}/accounts/{id}/{action}`.
"""

from __future__ import annotations

NOT_INVITED, PENDING, ACTIVE, DISABLED = "not_invited", "pending", "active", "disabled"

ALLOWED_ACTIONS: dict[str, tuple[str, ...]] = {
    NOT_INVITED: ("invite",),
    PENDING: ("resend", "revoke"),
    ACTIVE: ("disable", "password-reset"),
    DISABLED: ("reenable", "reactivate"),
}


def allowed_actions(status: str) -> list[str]:
    """The actions allowed in `status`; none for a state this table does not know."""
    return list(ALLOWED_ACTIONS.get(status, ()))
