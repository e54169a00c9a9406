"""The status list's handlers for staff actions, applied as the projector routes them:
each change shows, and a redelivered event changes nothing."""

from __future__ import annotations

from datetime import timedelta

from contracts.access import AccessDisabledV1, AccessReenabledV1, InviteResentV1, InviteRevokedV1
from tests.helpers import unique
from tests.integration.envelopes import AccountStory, project


async def _row(pool, story: AccountStory):
    return await pool.fetchrow("SELECT * FROM account_status WHERE account_id = $1", story.account_id)


async def test_disable_and_reenable_show_and_repeats_change_nothing(pg_pool):
    story = AccountStory(unique(), "dana@example.com")
    await project(pg_pool, story.created(), story.invite_sent(), story.activated())
    at = story.at + timedelta(days=1)
    disabled = story.other("AccessDisabled", {"at": at.isoformat(), "reason": "left"})
    assert isinstance(disabled, AccessDisabledV1)

    assert await project(pg_pool, disabled) == [True]
    row = await _row(pg_pool, story)
    assert (row["status"], row["disabled_at"], row["disabled_by"]) == ("disabled", at, "staff-7")
    assert row["disabled_reason"] == "left"

    reenabled = story.other("AccessReenabled", {"status": "active"})
    assert isinstance(reenabled, AccessReenabledV1)
    assert await project(pg_pool, reenabled, disabled) == [True, False]  # the redelivery is skipped
    row = await _row(pg_pool, story)
    assert (row["status"], row["disabled_at"], row["disabled_by"], row["disabled_reason"]) == ("active", None, None, None)


async def test_revoke_then_reactivate(pg_pool):
    story = AccountStory(unique(), "eli@example.com")
    await project(pg_pool, story.created(), story.invite_sent())
    revoked = story.other("InviteRevoked", {"at": story.at.isoformat()})
    assert isinstance(revoked, InviteRevokedV1)
    await project(pg_pool, revoked)
    assert (await _row(pg_pool, story))["status"] == "disabled"

    reenabled = story.other("AccessReenabled", {"status": "pending"})
    resent = story.other("InviteResent", {
        "invitation_id": str(story.invitation_id), "at": story.at.isoformat(),
        "expires_at": (story.at + timedelta(days=7)).isoformat(),
    })
    assert isinstance(resent, InviteResentV1)
    assert await project(pg_pool, reenabled, resent, resent) == [True, True, False]
    row = await _row(pg_pool, story)
    assert (row["status"], row["disabled_at"]) == ("pending", None)


async def test_events_that_show_nothing_are_only_recorded(pg_pool):
    story = AccountStory(unique(), "fay@example.com")
    await project(pg_pool, story.created(), story.invite_sent(), story.activated())
    before = await _row(pg_pool, story)
    reset = story.other("PasswordResetRequested", {
        "nonce": "r-1", "expires_at": story.at.isoformat(), "email": "Fay@Example.com", "name": None,
        "sender": {"workspace_name": "Acme", "sender_name": "Acme"},
    })
    assert await project(pg_pool, reset, reset) == [True, False]
    assert await _row(pg_pool, story) == before
