"""The read side cannot import the aggregate (the write side), so the status list keeps a copy
of which actions each state allows; this keeps the copy equal to the aggregate's table for
every state an account can be in (`not_invited` is the read side's own: no account yet)."""

from projections import queries
from services.invite_service.domain import portal_account


def test_the_status_lists_actions_are_the_aggregates():
    copied = {state: actions for state, actions in queries.ACTIONS.items() if state != "not_invited"}
    assert copied == portal_account.ACTIONS
