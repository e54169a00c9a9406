"""The status-list and deliveries projections: their typed handlers called directly on a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from projections import deliveries, queries
from projections.projector import Projector
from tests.helpers import unique
from tests.integration.envelopes import AccountStory, project


async def _row(pool, story: AccountStory):
    return await pool.fetchrow("SELECT * FROM account_status WHERE account_id = $1", story.account_id)


async def test_created_and_invited_account_is_pending_with_expiry(pg_pool):
    story = AccountStory(unique(), f"{unique('dana')}@example.com")
    assert await project(pg_pool, story.created(), story.invite_sent(ttl_hours=48)) == [True, True]

    row = await _row(pg_pool, story)
    assert row["status"] == "pending"
    assert row["workspace"] == story.workspace and row["email"] == story.email
    assert row["role"] == "charter_client" and row["company"] == "Acme Charters"
    assert row["invited_at"] == story.at and row["invited_by"] == "staff-7"
    assert row["expires_at"] == story.at + timedelta(hours=48)
    assert row["invitation_id"] == story.invitation_id
    assert row["activated_at"] is None and row["sign_ins"] == 0


async def test_invite_sent_before_account_created_gives_the_same_row(pg_pool):
    in_order = AccountStory(unique(), "a@example.com")
    reversed_ = AccountStory(in_order.workspace, "b@example.com", at=in_order.at)
    await project(pg_pool, in_order.created(), in_order.invite_sent())
    created, sent = reversed_.created(), reversed_.invite_sent()
    await project(pg_pool, sent, created)

    ignore = {"account_id", "email", "invitation_id"}
    a, b = await _row(pg_pool, in_order), await _row(pg_pool, reversed_)
    assert b["invitation_id"] == reversed_.invitation_id
    assert {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}


async def test_activation_makes_the_account_active(pg_pool):
    story = AccountStory(unique(), "c@example.com")
    activated = story.activated()
    await project(pg_pool, story.created(), story.invite_sent(), activated)

    row = await _row(pg_pool, story)
    assert row["status"] == "active"
    assert row["activated_at"] == activated.occurred_at
    assert row["updated_at"] == activated.occurred_at


async def test_an_event_applied_twice_changes_nothing(pg_pool):
    story = AccountStory(unique(), "d@example.com")
    created, sent, activated = story.created(), story.invite_sent(), story.activated()
    await project(pg_pool, created, sent, activated)
    before = await _row(pg_pool, story)

    # A re-published event is the same event (same id, aggregate and version), even if
    # its payload were to differ; the projection must not look at it again.
    replayed = created.model_copy(update={"data": created.data.model_copy(update={"name": "Someone Else"})})
    assert await project(pg_pool, replayed, sent, activated) == [False, False, False]

    assert await _row(pg_pool, story) == before
    applied = await pg_pool.fetchval(
        "SELECT count(*) FROM projection_applied WHERE projection = 'status_list' AND aggregate_id = ANY($1)",
        [story.account_id, story.invitation_id],
    )
    assert applied == 3


async def test_unknown_event_types_are_recorded_and_ignored(pg_pool):
    story = AccountStory(unique(), "e@example.com")
    await project(pg_pool, story.created(), story.invite_sent())
    before = await _row(pg_pool, story)

    future = story.other("SomethingInvented", {"colour": "teal"})
    assert await project(pg_pool, future) == [True]
    assert await project(pg_pool, future) == [False]
    assert await _row(pg_pool, story) == before


async def test_delivery_outcome_is_recorded_once_and_shown_on_the_account(pg_pool):
    story = AccountStory(unique(), "f@example.com")
    await project(pg_pool, story.created(), story.invite_sent())
    failed = story.delivery("failed", attempt=1)
    sent = story.delivery("sent", attempt=2, delivery_id=failed.delivery_id)

    projector = Projector(pg_pool)
    assert await deliveries.on_delivery(failed, projector) is True
    assert await deliveries.on_delivery(sent, projector) is True
    assert await deliveries.on_delivery(sent, projector) is False
    # An older attempt arriving late does not hide the newer outcome.
    assert await deliveries.on_delivery(failed, projector) is False

    rows = await pg_pool.fetch(
        "SELECT attempt, status FROM account_deliveries WHERE account_id = $1 ORDER BY attempt", story.account_id
    )
    assert [(r["attempt"], r["status"]) for r in rows] == [(1, "failed"), (2, "sent")]
    assert (await _row(pg_pool, story))["last_delivery_status"] == "sent"


async def test_delivery_projected_before_the_account_is_caught_up(pg_pool):
    story = AccountStory(unique(), "g@example.com")
    assert await deliveries.on_delivery(story.delivery("suppressed"), Projector(pg_pool)) is True
    await project(pg_pool, story.created(), story.invite_sent())
    assert (await _row(pg_pool, story))["last_delivery_status"] == "suppressed"


async def test_recent_login_activity_keeps_sign_ins_and_failures_newest_first(pg_pool):
    """The access tab's recent sign-in activity: each SignedIn and VerificationFailed, with method,
    time, address and browser, newest first, the last ten; a redelivered one changes nothing."""
    story = AccountStory(unique(), f"{unique('sia')}@example.com")
    await project(pg_pool, story.created(), story.invite_sent(), story.activated())
    signed = story.other("SignedIn", {"method": "claim", "at": story.at.isoformat(), "ip": "203.0.113.9",
                                      "user_agent": "Firefox"})
    failed = story.other("VerificationFailed", {"method": "code", "at": (story.at + timedelta(hours=2)).isoformat(),
                                                "failures": 1, "ip": "203.0.113.10", "user_agent": "curl"})
    assert await project(pg_pool, signed, failed, failed) == [True, True, False]
    later = [story.other("SignedIn", {"method": "code", "at": (story.at + timedelta(hours=3, minutes=i)).isoformat()})
             for i in range(12)]
    await project(pg_pool, *later)

    view = await queries.get_account(pg_pool, story.workspace, story.account_id)
    recent = view["recent_sign_ins"]
    assert len(recent) == 10 and all(r["outcome"] == "signed_in" and r["method"] == "code" for r in recent)
    assert [r["at"] for r in recent] == sorted((r["at"] for r in recent), reverse=True)
    assert view["sign_ins"] == 13 and view["last_sign_in_at"] == story.at + timedelta(hours=3, minutes=11)

    short = AccountStory(unique(), f"{unique('sib')}@example.com")
    await project(pg_pool, short.created(), short.invite_sent(), short.activated())
    await project(pg_pool, short.other("SignedIn", {"method": "claim", "at": short.at.isoformat(), "ip": "198.51.100.1",
                                                    "user_agent": "Firefox"}),
                  short.other("VerificationFailed", {"method": "password", "at": (short.at + timedelta(hours=1)).isoformat(),
                                                     "failures": 1, "ip": "198.51.100.2"}))
    recent = (await queries.get_account(pg_pool, short.workspace, short.account_id))["recent_sign_ins"]
    assert [(r["outcome"], r["method"], r["ip"]) for r in recent] == [
        ("failed", "password", "198.51.100.2"), ("signed_in", "claim", "198.51.100.1")
    ]
    assert recent[1]["user_agent"] == "Firefox"
