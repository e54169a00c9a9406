"""What staff may do to a portal account in each state: the one table both sides read.

The write side's `PortalAccount.allowed_actions` answers from it (and refuses the rest with
409 `invalid_state`); the read side shows it on every account view as `actions`. It lives
here, beside the other shapes that cross the boundary, so the read side never needs a
second copy of the state machine. Stdlib only: the aggregate may import it.

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
