"""No secret leaves its place: after every sign-in method has run, neither the stored
events, nor the log, nor the Kafka messages the relay published hold a link token, a code,
a password, a password hash, a session cookie or a hand-off code."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from aiokafka import AIOKafkaConsumer

from services.common.log_follower import save_position
from services.invite_service.relay import Relay
from tests.helpers import poll_until, unique
from tests.integration.sign_in_helpers import (
    GOOD_PASSWORD, JSON, active_client, claim_path, code_of, invite, magic_path, reset_path, workspace,
)


async def test_no_token_code_password_or_hash_in_events_logs_or_kafka(api, staff_token, pg_pool, kafka_bootstrap,
                                                                       topic_names, caplog):
    caplog.set_level(logging.DEBUG)
    access = api.app.state.portal_access
    relay_name = unique("relay")
    await save_position(pg_pool, relay_name, access.recorder.max_notification_id() or 0)
    secrets: list[str] = [GOOD_PASSWORD]
    accounts: list[str] = []

    # Password: claim with a password, sign in, forget it, reset it.
    ws = await workspace(api, staff_token, "password", portal_url="https://app.example.com/")
    email, account_id = await invite(api, staff_token, ws)
    path = claim_path(api, account_id)
    secrets += [path.rsplit("/", 1)[1], path.rsplit(".", 1)[1]]
    claimed = await api.post(path, headers=JSON, json={"password": GOOD_PASSWORD})
    secrets += [claimed.cookies["porchlight_session"], parse_qs(urlsplit(claimed.json()["redirect_to"]).query)["code"][0]]
    signed = await api.post(f"/portal/{ws}/sign-in/password", headers=JSON, json={"email": email, "password": GOOD_PASSWORD})
    secrets.append(signed.cookies["porchlight_session"])
    await api.post(f"/portal/{ws}/sign-in/password", headers=JSON, json={"email": email, "password": "wrong password 1"})
    await api.post(f"/portal/{ws}/password/forgot", headers=JSON, json={"email": email})
    reset = reset_path(api, ws, account_id)
    secrets += [reset.rsplit("/", 1)[1], reset.rsplit(".", 1)[1], "brand new password 77"]
    await api.post(reset, headers=JSON, json={"password": "brand new password 77"})
    secrets += [await pg_pool.fetchval("SELECT password_hash FROM portal_credentials WHERE account_id = $1",
                                       UUID(account_id))]
    accounts.append(account_id)

    # Magic link.
    ws = await workspace(api, staff_token, "magic_link")
    email, account_id, session = await active_client(api, staff_token, ws)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    link = magic_path(api, ws, account_id)
    secrets += [session, link.rsplit("/", 1)[1], link.rsplit(".", 1)[1]]
    secrets.append((await api.post(link, headers=JSON, json={})).cookies["porchlight_session"])
    accounts.append(account_id)

    # Code, a wrong one first.
    ws = await workspace(api, staff_token, "code")
    email, account_id, session = await active_client(api, staff_token, ws)
    await api.post(f"/portal/{ws}/sign-in", headers=JSON, json={"email": email})
    code = code_of(api, account_id)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": wrong})
    ok = await api.post(f"/portal/{ws}/sign-in/code", headers=JSON, json={"email": email, "code": code})
    secrets += [session, ok.cookies["porchlight_session"]]
    accounts.append(account_id)
    codes = [code, wrong]  # six digits could occur by chance in ids and times: searched as quoted values

    # Everything the relay publishes for these accounts.
    relay = Relay(access, pg_pool, kafka_bootstrap, topic_names["access"], relay_name, batch_max=100)
    task = asyncio.create_task(relay.run())
    consumer = AIOKafkaConsumer(topic_names["access"], bootstrap_servers=kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=unique("reader"))
    await consumer.start()
    messages: list[bytes] = []
    try:
        head = access.recorder.max_notification_id()

        async def all_published():
            batch = await consumer.getmany(timeout_ms=200)
            messages.extend(m.value for msgs in batch.values() for m in msgs)
            return any(f'"position":{head}'.encode() in m for m in messages)

        await poll_until(all_published, what="the relay to publish every event")
    finally:
        await consumer.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stored = b"".join(bytes(r["state"]) for r in await pg_pool.fetch(
        "SELECT state FROM porchlight_events WHERE originator_id = ANY($1::uuid[])", [UUID(a) for a in accounts]))
    published = b"\n".join(messages)
    # Everything logged in this process but by the test's own HTTP client, which logs its URLs.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    kinds = {type(e).__name__ for a in accounts for e in access.events.get(UUID(a))}
    assert {"PasswordSet", "SignedIn", "VerificationFailed", "MagicLinkRequested", "SignInCodeIssued",
            "PasswordResetRequested"} <= kinds
    assert "claimed its invitation" in logged  # the scan sees the service's own lines
    for secret in secrets:
        assert secret and secret.encode() not in stored, "a secret in the event store"
        assert secret.encode() not in published, "a secret on Kafka"
        assert secret not in logged, "a secret in the log"
    for digits in codes:
        for quoted in (f'"{digits}"', f"'{digits}'", f" {digits} "):
            assert quoted.encode() not in stored and quoted.encode() not in published and quoted not in logged
