"""Applying a batch in one transaction builds exactly the rows one transaction per event does,
redelivered duplicates included; a batch that fails commits nothing of itself."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from projections import batches, status_list
from projections.main import run
from projections.applied import GapFound
from projections.projector import Projector
from services.common.event_routing import route
from services.common.kafka import create_producer
from services.common.metrics import PROJECTOR_BATCH_FALLBACKS
from services.common.settings import ProjectorSettings
from tests.helpers import poll_until, unique
from tests.integration.envelopes import AccountStory, project

handler_for = route(status_list.HANDLERS, otherwise=status_list.on_other_event)


def _events(ws: str) -> list:
    """Twenty accounts in the orders a topic can hold: invite before or after the account,
    some claimed, a workspace-level event, and redelivered copies."""
    rnd = random.Random(ws)
    events = []
    for i in range(20):
        story = AccountStory(ws, f"b{i}@example.com", name=f"Bea {i}", at=AccountStory(ws, "x").at + timedelta(minutes=i))
        created, sent = story.created(), story.invite_sent()
        events += [created, sent] if i % 2 else [sent, created]
        if i % 3 == 0:
            events.append(story.activated())
        if i % 4 == 0:
            events.append(story.other("TokenClaimed", {"at": story.at.isoformat()}))
        if i % 5 == 0:
            events.append(rnd.choice(events))  # a redelivery
    return events


async def _snapshot(pool, ws: str, events):
    rows = await pool.fetch("SELECT * FROM account_status WHERE workspace = $1 ORDER BY email", ws)
    applied = await pool.fetch(
        "SELECT aggregate_id, version, event_id, position FROM projection_applied "
        "WHERE projection = 'status_list' AND aggregate_id = ANY($1::uuid[]) ORDER BY aggregate_id, version",
        list({e.aggregate_id for e in events}),
    )
    return [dict(r) for r in rows], [dict(r) for r in applied]


async def _forget(pool, ws: str, events) -> None:
    await pool.execute("DELETE FROM account_status WHERE workspace = $1", ws)
    await pool.execute(
        "DELETE FROM projection_applied WHERE projection = 'status_list' AND aggregate_id = ANY($1::uuid[])",
        list({e.aggregate_id for e in events}),
    )


async def test_a_batch_builds_the_same_rows_as_one_transaction_per_event(pg_pool):
    ws = unique()
    events = _events(ws)
    one_by_one = await project(pg_pool, *events)
    expected = await _snapshot(pg_pool, ws, events)
    assert len(expected[0]) == 20 and one_by_one.count(False) >= 1  # the redeliveries changed nothing

    await _forget(pg_pool, ws, events)
    projector = Projector(pg_pool)
    async with projector.batch(status_list.PROJECTION, [e.position for e in events]):
        results = [await handler_for(e.type)(e, projector) for e in events]
    assert results == one_by_one
    assert await _snapshot(pg_pool, ws, events) == expected
    assert projector.stats.applied == one_by_one.count(True)
    assert projector.stats.duplicates == one_by_one.count(False)


async def test_a_batch_that_fails_commits_none_of_itself(pg_pool):
    ws = unique()
    story = AccountStory(ws, "gap@example.com")
    created, sent, activated = story.created(), story.invite_sent(), story.activated()
    projector = Projector(pg_pool, event_source=_never_called)
    with pytest.raises(GapFound):  # the activation arrives without its account: the batch aborts
        async with projector.batch(status_list.PROJECTION, [sent.position, activated.position]):
            for event in (sent, activated):
                await handler_for(event.type)(event, projector)
    assert await pg_pool.fetchval("SELECT count(*) FROM account_status WHERE workspace = $1", ws) == 0
    assert await pg_pool.fetchval(
        "SELECT count(*) FROM projection_applied WHERE aggregate_id = ANY($1::uuid[])",
        [story.account_id, story.invitation_id],
    ) == 0
    assert projector.stats.applied == 0
    assert await project(pg_pool, created, sent, activated) == [True, True, True]


async def _never_called(seen, versions):
    raise AssertionError("a batch does not repair a gap itself: it falls back to one message at a time")


async def test_the_projector_applies_what_it_fetches_in_batches(base_env, monkeypatch, pg_pool, kafka_bootstrap,
                                                                topic_names):
    """Through the broker: a burst of events is applied, and no batch had to fall back."""
    for name, value in base_env.items():
        monkeypatch.setenv(name, value)
    ws = unique()
    events = _events(ws)
    fallbacks = PROJECTOR_BATCH_FALLBACKS._value.get()
    producer = create_producer(kafka_bootstrap)
    await producer.start()
    try:
        for event in events:
            await producer.send(topic_names["access"], event.model_dump_json().encode(), key=event.key,
                                headers=event.headers)
        await producer.flush()
    finally:
        await producer.stop()
    task = asyncio.create_task(run(ProjectorSettings(projector_group_id=unique("projector"))))
    try:
        async def all_there():
            return await pg_pool.fetchval("SELECT count(*) FROM account_status WHERE workspace = $1", ws) == 20 and \
                await pg_pool.fetchval(
                    "SELECT count(*) FROM projection_applied WHERE aggregate_id = ANY($1::uuid[])",
                    list({e.aggregate_id for e in events}),
                ) == len({(e.aggregate_id, e.aggregate_version) for e in events})

        await poll_until(all_there, what="every event applied")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert PROJECTOR_BATCH_FALLBACKS._value.get() == fallbacks


async def test_claimed_up_front_and_written_in_waves_the_rows_are_the_same(pg_pool):
    # What the subscriber does with a fetched batch (batches.apply_access_events): one claim for
    # the batch, the writes sent a statement kind at a time; redeliveries inside it change nothing.
    ws = unique()
    events = _events(ws)
    one_by_one = await project(pg_pool, *events)
    expected = await _snapshot(pg_pool, ws, events)

    await _forget(pg_pool, ws, events)
    projector = Projector(pg_pool)
    await batches.apply_access_events(projector, events)
    assert await _snapshot(pg_pool, ws, events) == expected
    assert projector.stats.applied == one_by_one.count(True)
    assert projector.stats.duplicates == one_by_one.count(False)

    again = Projector(pg_pool)  # the whole batch redelivered: all recognised, nothing changed
    await batches.apply_access_events(again, events)
    assert again.stats.applied == 0 and again.stats.duplicates == len(events)
    assert await _snapshot(pg_pool, ws, events) == expected


async def test_an_up_front_claim_finds_a_gap_and_commits_nothing(pg_pool):
    ws = unique()
    story = AccountStory(ws, "gap-claim@example.com")
    created, sent, activated = story.created(), story.invite_sent(), story.activated()
    projector = Projector(pg_pool, event_source=_never_called)
    with pytest.raises(GapFound):  # v2 of the account without v1, which is not in the batch either
        await batches.apply_access_events(projector, [sent, activated])
    assert await pg_pool.fetchval(
        "SELECT count(*) FROM projection_applied WHERE aggregate_id = ANY($1::uuid[])",
        [story.account_id, story.invitation_id],
    ) == 0
    # With its predecessor in the same batch there is no gap.
    await batches.apply_access_events(projector, [sent, created, activated])
    assert await pg_pool.fetchval("SELECT status FROM account_status WHERE workspace = $1", ws) == "active"
