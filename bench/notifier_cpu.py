"""The notifier's CPU per email: 5,000 invites through the SMTP provider, next to bare send loops.

    .venv/bin/python -m bench.notifier_cpu [--invites 5000]

Publishes N InviteSent envelopes to a fresh topic, then runs the notifier (`services.notifier.main.run`,
SMTP provider) in this process until the ledger says all N were sent, and measures this
process's CPU time (time.process_time). The SMTP server is an aiosmtpd sink in its own process
that only counts (a parsing sink costs more than the notifier: bench/README), so its work is not
counted; neither is PostgreSQL's or the broker's. Baselines in the same run: bare aiosmtplib
loops sending one prepared message N times over one kept connection to the same sink, as an
EmailMessage (`send_message`, the usual call, which flattens it every time) and as its bytes
(`sendmail`, the floor). The goal is the notifier at no more than twice the bare loop's CPU
per email.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiosmtplib

from bench.infra import broker, database
from contracts.access import InviteSentV1, event_id_for, parse_access_event
from deploy import embedded
from deploy.migrate import migrate_database
from services.common import tokens
from services.common.database import create_pool
from services.common.kafka import create_producer, ensure_topics
from services.common.settings import NotifierSettings

SECRET = "bench-secret-key-" + "b" * 32


def _sink(port: int, ready) -> None:
    """A counting SMTP server, run in a child process."""
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def prepare(count: int) -> tuple[str, list[InviteSentV1]]:
    ws, now, events = f"bench-{secrets.token_hex(3)}", datetime.now(UTC), []
    position = 10**12 + secrets.randbelow(10**9) * 100_000
    for i in range(count):
        account_id, invitation_id = uuid.uuid4(), uuid.uuid4()
        events.append(parse_access_event({
            "event_id": str(event_id_for(invitation_id, 1)), "type": "InviteSent", "workspace": ws,
            "account_id": str(account_id), "aggregate_id": str(invitation_id), "aggregate_version": 1,
            "position": position + i, "occurred_at": now.isoformat(), "actor": {"kind": "staff", "id": "bench"},
            "data": {"workspace": ws, "account_id": str(account_id), "email": f"p{i}@example.com", "name": f"P {i}",
                     "nonce": tokens.new_nonce(), "expires_at": (now + timedelta(days=7)).isoformat(),
                     "sender": {"workspace_name": "Pride Travelers", "sender_name": "Pride Travelers",
                                "brand_color": "#0B7A75"}},
        }))
    return ws, events


async def publish(bootstrap: str, topic: str, events) -> None:
    producer = create_producer(bootstrap)
    await producer.start()
    try:
        for i in range(0, len(events), 1000):
            await asyncio.gather(*[
                await producer.send(topic, e.model_dump_json().encode(), key=e.key, headers=e.headers)
                for e in events[i:i + 1000]
            ])
    finally:
        await producer.stop()


async def bare_loop(port: int, count: int, *, as_bytes: bool) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for aiosmtplib alone: one prepared invite sent `count` times,
    as an EmailMessage (`send_message`, which flattens it each time) or as its bytes (`sendmail`)."""
    from services.messages.outgoing import messages_for
    from services.notifier.providers.base import Email, mime_message

    _, [event] = prepare(1)
    [invite] = messages_for(event, secret_key=SECRET.encode(), public_base_url="http://127.0.0.1:8000")
    r = invite.email
    message = mime_message(Email(to=invite.to, from_address="portal@porchlight.localhost", from_name=r.from_name,
                                 reply_to=r.reply_to, subject=r.subject, html=r.html, text=r.text,
                                 delivery_id=uuid.uuid4()))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if as_bytes:
            data = message.as_bytes()
            for _ in range(count):
                await client.sendmail("portal@porchlight.localhost", [invite.to], data)
        else:
            for _ in range(count):
                await client.send_message(message)
        return time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await client.quit()


async def notify(url: str, bootstrap: str, topic: str, port: int, ws: str, count: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) for the notifier to send `count` invites from `topic`."""
    from services.notifier.main import run

    settings = NotifierSettings(
        database_url=url, kafka_bootstrap_servers=bootstrap, access_topic=topic, porchlight_secret_key=SECRET,
        deliveries_topic=f"{topic}.deliveries", dlq_topic=f"{topic}.dlq", smtp_host="127.0.0.1", smtp_port=port,
        notifier_group_id=f"bench-notifier-{secrets.token_hex(3)}", log_level="WARNING",
    )
    pool = await create_pool(url, max_size=1)
    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        task = asyncio.create_task(run(settings))
        while await pool.fetchval(
            "SELECT count(*) FROM notifier_deliveries WHERE workspace = $1 AND status = 'sent'", ws
        ) < count:
            if task.done():
                task.result()
            await asyncio.sleep(0.25)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return cpu, wall
    finally:
        await pool.close()


async def main(count: int) -> None:
    port = embedded.free_port()
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=_sink, args=(port, ready), daemon=True)
    sink.start()
    ready.wait(10)
    try:
        with database() as url, broker() as bootstrap:
            await migrate_database(url)
            topic = f"bench.access.{secrets.token_hex(3)}"
            await ensure_topics(bootstrap, [topic, f"{topic}.deliveries", f"{topic}.dlq"])
            ws, events = prepare(count)
            await publish(bootstrap, topic, events)
            bare_cpu, bare_wall = await bare_loop(port, count, as_bytes=False)
            raw_cpu, raw_wall = await bare_loop(port, count, as_bytes=True)
            cpu, wall = await notify(url, bootstrap, topic, port, ws, count)
            print(f"{count:,} invites; CPU of this process only (SMTP sink, PostgreSQL and broker are other processes)\n")
            print(f"{'':48} {'CPU µs/email':>12} {'emails/s':>10}")
            print(f"{'baseline: bare aiosmtplib send_message loop':48} {bare_cpu / count * 1e6:12.0f} "
                  f"{count / bare_wall:10,.0f}")
            print(f"{'baseline: bare aiosmtplib sendmail(bytes) loop':48} {raw_cpu / count * 1e6:12.0f} "
                  f"{count / raw_wall:10,.0f}")
            print(f"{'notifier (SMTP provider)':48} {cpu / count * 1e6:12.0f} {count / wall:10,.0f}")
            print(f"\nnotifier / bare send_message: {cpu / bare_cpu:.2f}x; notifier / bare sendmail(bytes): "
                  f"{cpu / raw_cpu:.2f}x (goal: at most 2x)")
    finally:
        sink.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invites", type=int, default=5000)
    asyncio.run(main(parser.parse_args().invites))
