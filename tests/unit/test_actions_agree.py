"""The read side cannot import the aggregate (the write side), so it shows each account's
`actions` from `contracts.account_actions`; this keeps that table equal to the aggregate's
for every state an account can be in (`not_invited` is the read side's own: no account yet)."""

from contracts import account_actions
from services.invite_service.domain import portal_account


def test_the_read_sides_actions_are_the_aggregates():
    shown = {state: list(actions) for state, actions in account_actions.ALLOWED_ACTIONS.items() if state != "not_invited"}
    assert shown == {state: list(actions) for state, actions in portal_account.ACTIONS.items()}
