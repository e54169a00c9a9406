"""Auto-invite on first share: real share events on the suite's broker, the `autoinvite`
consumer process in-process, and the decisions read back from the event store."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import UTC, datetime

import pytest

from contracts.shares import Traveler, TripShareV1
from services.autoinvite.main import run
from services.common import tokens
from services.common.database import eventsourcing_env
from services.common.kafka import create_producer, ensure_topics
from services.common.settings import AutoinviteSettings
from services.invite_service.application import InviteCommand, PortalAccess
from services.invite_service.domain import ids
from tests.conftest import SECRET_KEY
from tests.helpers import dead_letters, poll_until, unique, wait_for_dead_letter

STAFF = {"kind": "staff", "id": "staff-1", "reason": None}


@pytest.fixture
def access(migrated):
    app = PortalAccess(eventsourcing_env(migrated), secret_key=SECRET_KEY.encode())
    yield app
    app.close()


@pytest.fixture
async def shares_topic(kafka_bootstrap) -> str:
    name = unique("test.shares")
    await ensure_topics(kafka_bootstrap, [name])
    return name


def _settings(**overrides) -> AutoinviteSettings:
    # A group per test (its topic is per test too); the rest from the environment set below.
    return AutoinviteSettings(autoinvite_group_id=overrides.pop("group", unique("autoinvite")), **overrides)


@pytest.fixture
async def autoinvite(base_env, shares_topic, monkeypatch):
    for name, value in {**base_env, "TRIP_SHARES_TOPIC": shares_topic}.items():
        monkeypatch.setenv(name, value)
    task = asyncio.create_task(run(_settings()))
    yield task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def workspace(access: PortalAccess, **settings) -> str:
    ws = unique("ws")
    wanted = {"name": "Pride Travelers", "plan": "pro", "portal_enabled": True, "auto_invite_on_first_share": True}
    await access.configure_workspace(ws, wanted | settings, STAFF)
    return ws


def share(ws: str, trip: str, *travelers: Traveler, kind: str = "invoice") -> TripShareV1:
    return TripShareV1(
        event_id=uuid.uuid4(), workspace=ws, trip_id=trip, kind=kind, shared_by="agent-7",
        occurred_at=datetime.now(UTC), travelers=list(travelers),
    )


def person(name: str, email: str | None = "", primary: bool = False) -> Traveler:
    if email == "":
        email = f"{unique(name.lower())}@example.com"
    return Traveler(contact_id=unique("c"), name=name, email=email, primary=primary)


async def publish(bootstrap: str, topic: str, *messages) -> None:
    """As an upstream service on aiokafka would: keyed by trip id. A (key, bytes) tuple is sent as is."""
    producer = create_producer(bootstrap)
    await producer.start()
    try:
        for message in messages:
            key, value = message if isinstance(message, tuple) else (message.key, message.model_dump_json().encode())
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def _trip(access: PortalAccess, ws: str, trip: str):
    return access._get_trip(ids.trip_id(ws, trip))


async def trip_at(access: PortalAccess, ws: str, trip: str, version: int = 1):
    """The trip once the consumer has recorded `version` of it."""
    async def found():
        t = await asyncio.to_thread(_trip, access, ws, trip)
        return t if t is not None and t.version >= version else None

    return await poll_until(found, what=f"trip {trip} v{version}")


def _account_exists(access: PortalAccess, ws: str, email: str) -> bool:
    return bool(access._existing_accounts([ids.account_id(ws, email.lower())]))


def _invite_event(access: PortalAccess, invitation_id: uuid.UUID):
    return next(iter(access.events.get(invitation_id)))


async def test_first_share_invites_the_primary_traveler_once(access, autoinvite, shares_topic, kafka_bootstrap):
    ws = await workspace(access)
    ben, ana = person("Ben"), person("Ana", primary=True)
    first = share(ws, "T-1", ben, ana)
    await publish(kafka_bootstrap, shares_topic, first)

    trip = await trip_at(access, ws, "T-1")
    decision = trip.auto_invite
    assert decision["outcome"] == "invited" and decision["email"] == ana.email
    assert _account_exists(access, ws, ana.email) and not _account_exists(access, ws, ben.email)

    account = access.get_account(ids.account_id(ws, ana.email))
    assert account.role == "customer" and account.resources == [{"type": "trip", "id": "T-1"}]
    sent = _invite_event(access, uuid.UUID(decision["invitation_id"]))
    assert sent.method == "auto_on_share"
    assert not getattr(sent, "inviter_staff_id", None) and not getattr(sent, "inviter_name", None)
    cause = {"event_id": str(first.event_id), "topic": "trips.shares.v1", "trip_id": "T-1", "kind": "invoice",
             "shared_by": "agent-7"}
    assert sent.actor == {"kind": "system", "reason": "first invoice share", "cause": cause}

    # A second share (another kind, Ben now primary), then the first again (a redelivery),
    # then a marker behind them on the same partition: only the marker and the second are recorded.
    second = share(ws, "T-1", person("Ben", ben.email, primary=True), kind="proposal")
    marker = share(ws, "T-1", ana)
    await publish(kafka_bootstrap, shares_topic, second, first, marker)
    trip = await trip_at(access, ws, "T-1", version=3)
    assert trip.version == 3 and trip.share_ids == [str(first.event_id), str(second.event_id), str(marker.event_id)]
    assert not _account_exists(access, ws, ben.email)
    assert trip.auto_invite == decision


async def test_falls_back_to_the_first_traveler_with_an_email(access, autoinvite, shares_topic, kafka_bootstrap):
    ws = await workspace(access)
    lead = Traveler(name="No Email", primary=True)
    broken, dora, eve = person("Carl", "not-an-email"), person("Dora"), person("Eve")
    await publish(kafka_bootstrap, shares_topic, share(ws, "T-2", lead, broken, dora, eve))

    decision = (await trip_at(access, ws, "T-2")).auto_invite
    assert decision["outcome"] == "invited" and decision["email"] == dora.email
    assert not _account_exists(access, ws, eve.email)


async def test_gates_and_no_candidate_are_recorded_and_skipped(access, autoinvite, shares_topic, kafka_bootstrap):
    cases = {
        "auto_invite_off": await workspace(access, auto_invite_on_first_share=False),
        "plan_required": await workspace(access, plan="free"),
        "portal_disabled": await workspace(access, portal_enabled=False),
        "unknown_workspace": unique("nowhere"),
        "no_candidate": await workspace(access),
    }
    shares = {}
    for reason, ws in cases.items():
        travelers = [Traveler(name="Nobody", primary=True)] if reason == "no_candidate" else [person("Ana", primary=True)]
        shares[reason] = share(ws, "T-3", *travelers)
    await publish(kafka_bootstrap, shares_topic, *shares.values())

    for reason, ws in cases.items():
        decision = (await trip_at(access, ws, "T-3")).auto_invite
        assert (decision["outcome"], decision["reason"]) == ("skipped", reason)
        email = shares[reason].travelers[0].email
        assert email is None or not _account_exists(access, ws, email)


async def test_no_invite_when_the_candidate_has_an_account_in_any_state(
    access, autoinvite, shares_topic, kafka_bootstrap
):
    ws = await workspace(access)
    pending, active, disabled = person("Pia", primary=True), person("Abe", primary=True), person("Dee", primary=True)
    results = {}
    for who in (pending, active, disabled):
        results[who.email] = await access.invite(ws, InviteCommand(email=who.email, name=who.name, role="customer"), STAFF)
    invitation = access.repository.get(results[active.email].invitation_id)
    await access.claim(ws, tokens.make_token(SECRET_KEY.encode(), tokens.CLAIM, invitation.id, invitation.nonce))
    await access.act_on_account(ws, results[disabled.email].account_id, "revoke", STAFF)
    states = {w.email: access.get_account(results[w.email].account_id).status for w in (pending, active, disabled)}
    assert states == {pending.email: "pending", active.email: "active", disabled.email: "disabled"}

    trips = {who.email: unique("T") for who in (pending, active, disabled)}
    await publish(kafka_bootstrap, shares_topic, *(share(ws, trips[w.email], w) for w in (pending, active, disabled)))

    for who in (pending, active, disabled):
        decision = (await trip_at(access, ws, trips[who.email])).auto_invite
        assert (decision["outcome"], decision["reason"]) == ("skipped", "account_exists"), who.email
        account = access.get_account(results[who.email].account_id)
        # untouched: created (pending); created, activated, signed in by the claim (active); created, revoked
        assert account.version == {"pending": 1, "active": 3, "disabled": 2}[states[who.email]]


def _both_read_before_either_writes(apps: list[PortalAccess], monkeypatch) -> list[int]:
    """Make each app's first look at the trip wait for the other's: both see no trip, both
    decide to invite, and both commit version 1. Returns each app's count of looks."""
    barrier, looks = threading.Barrier(len(apps)), [0] * len(apps)
    for index, app in enumerate(apps):
        def look(trip_id, _get=app._get_trip, _index=index):
            found = _get(trip_id)
            looks[_index] += 1
            if looks[_index] == 1:
                barrier.wait(timeout=10)
            return found

        monkeypatch.setattr(app, "_get_trip", look)
    return looks


async def test_two_concurrent_first_shares_invite_once(access, migrated, monkeypatch):
    """Two instances (two Applications, as two consumer processes) race on one trip's first share:
    the loser meets the version conflict on the trip, looks again and records a later share."""
    ws = await workspace(access)
    other = PortalAccess(eventsourcing_env(migrated))
    try:
        looks = _both_read_before_either_writes([access, other], monkeypatch)
        ana, ben = person("Ana", primary=True), person("Ben", primary=True)
        results = await asyncio.gather(
            access.auto_invite(share(ws, "T-race", ana)), other.auto_invite(share(ws, "T-race", ben, kind="proposal"))
        )
        assert sorted(r.outcome for r in results) == ["invited", "later_share"], results
        assert sorted(looks) == [1, 2]  # the loser looked again after its conflict
        invited = [w.email for w in (ana, ben) if _account_exists(access, ws, w.email)]
        assert len(invited) == 1
        t = _trip(access, ws, "T-race")
        assert t.version == 2 and t.auto_invite["email"] == invited[0]
    finally:
        other.close()


async def test_two_consumer_instances_in_one_group_invite_once(
    access, base_env, shares_topic, kafka_bootstrap, monkeypatch
):
    """Two `autoinvite` processes in one group, many trips, each first share published twice and
    followed by a second share: every trip gets exactly one decision and one invite."""
    for name, value in {**base_env, "TRIP_SHARES_TOPIC": shares_topic}.items():
        monkeypatch.setenv(name, value)
    group = unique("autoinvite")
    consumers = [asyncio.create_task(run(_settings(group=group))) for _ in range(2)]
    try:
        ws = await workspace(access)
        trips = {unique("T"): (person("Ana", primary=True), person("Ben")) for _ in range(12)}
        firsts = {trip: share(ws, trip, *people) for trip, people in trips.items()}
        seconds = {trip: share(ws, trip, people[1], kind="proposal") for trip, people in trips.items()}
        await publish(kafka_bootstrap, shares_topic, *firsts.values(), *firsts.values(), *seconds.values())
        for trip, (ana, ben) in trips.items():
            t = await trip_at(access, ws, trip, version=2)
            assert t.auto_invite["email"] == ana.email and t.version == 2
            assert _account_exists(access, ws, ana.email) and not _account_exists(access, ws, ben.email)
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)


async def test_a_redelivered_share_is_a_no_op_for_the_command(access):
    ws = await workspace(access)
    first = share(ws, "T-again", person("Ana", primary=True))
    assert (await access.auto_invite(first)).outcome == "invited"
    assert (await access.auto_invite(first)).outcome == "already_handled"
    assert _trip(access, ws, "T-again").version == 1


@pytest.mark.parametrize("batch_max", [200, 1], ids=["batches", "one-at-a-time"])
async def test_malformed_shares_are_dead_lettered_and_added_fields_ignored(
    access, base_env, shares_topic, kafka_bootstrap, topic_names, monkeypatch, batch_max
):
    for name, value in {**base_env, "TRIP_SHARES_TOPIC": shares_topic}.items():
        monkeypatch.setenv(name, value)
    consumer = asyncio.create_task(run(_settings(autoinvite_batch_max=batch_max)))
    try:
        await _dead_letters_and_added_fields(access, shares_topic, kafka_bootstrap, topic_names)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)


async def _dead_letters_and_added_fields(access, shares_topic, kafka_bootstrap, topic_names):
    ws = await workspace(access)
    good = share(ws, "T-4", person("Ana", primary=True))
    body = json.loads(good.model_dump_json())
    body["colour"] = "teal"  # a producer added fields within v1
    body["travelers"][0]["loyalty_tier"] = "gold"
    bad_kind = json.loads(share(ws, "T-4", kind="invoice").model_dump_json()) | {"kind": "receipt"}
    await publish(
        kafka_bootstrap, shares_topic,
        (b"T-4", b"{not json"),
        (b"T-4", json.dumps({"workspace": ws, "trip_id": "T-4"}).encode()),  # no event_id, kind, occurred_at
        (b"T-4", json.dumps(bad_kind).encode()),
        (b"T-4", json.dumps(body).encode()),
    )

    decision = (await trip_at(access, ws, "T-4")).auto_invite
    assert decision["outcome"] == "invited"
    parked = await poll_until(
        lambda: _at_least(dead_letters(kafka_bootstrap, topic_names["dlq"]), 3), what="three dead letters"
    )
    assert [value for _, value, _ in parked][0] == b"{not json"
    for key, _, headers in parked:
        assert key == b"T-4"
        assert headers["dlq-consumer"] == "autoinvite" and headers["dlq-topic"] == shares_topic
        assert headers["dlq-category"] == "unprocessable" and headers["dlq-reason"]
    assert "kind" in parked[2][2]["dlq-reason"]


async def _at_least(records, count: int):
    found = await records
    return found if len(found) >= count else None


async def test_a_confluent_kafka_producer_is_handled_like_aiokafka(access, autoinvite, shares_topic, kafka_bootstrap):
    from confluent_kafka import Producer

    ws = await workspace(access)
    first = share(ws, "T-5", person("Ana", primary=True))
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all", "enable.idempotence": False})
    reports = []
    producer.produce(shares_topic, value=first.model_dump_json().encode(), key=first.key,
                     on_delivery=lambda err, msg: reports.append(err))
    remaining = await asyncio.to_thread(producer.flush, 20)
    assert remaining == 0 and reports == [None]

    decision = (await trip_at(access, ws, "T-5")).auto_invite
    assert decision["outcome"] == "invited" and decision["email"] == first.travelers[0].email


async def test_publish_share_cli_reaches_the_consumer(access, autoinvite, shares_topic, kafka_bootstrap, base_env):
    import os
    import subprocess
    import sys

    ws = await workspace(access)
    email = f"{unique('ana')}@example.com"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TRIP_SHARES_TOPIC": shares_topic}
    env.pop("DATABASE_URL", None)  # publishing needs only the broker
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "deploy.cli", "publish-share", "--workspace", ws, "--trip", "T-cli", "--kind", "proposal",
         "--traveler", "Ben Lima", "--traveler", f"Ana Lima <{email}>", "--shared-by", "agent-9"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    published = TripShareV1.model_validate_json(done.stdout.strip().splitlines()[-1])
    assert [t.email for t in published.travelers] == [None, email]

    decision = (await trip_at(access, ws, "T-cli")).auto_invite
    assert decision["outcome"] == "invited" and decision["email"] == email
