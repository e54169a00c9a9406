"""CPU per email through the SMTP provider, next to bare aiosmtplib loops in the same run.

    python -m bench.smtp_provider [--count 5000]

Everything on one kept connection to a local aiosmtpd (in a thread of this process; only
the sending thread's CPU is counted). Prints microseconds of CPU per message for:
  bare bytes   aiosmtplib sendmail of one prebuilt message, again and again (the floor)
  bare stdlib  aiosmtplib send_message of an EmailMessage built per message (the old way)
  provider     SmtpProvider.send of an Email per message: MIME written directly, SendResult
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import aiosmtplib
from aiosmtpd.controller import Controller

from deploy.embedded import free_port
from services.common.settings import NotifierSettings
from services.notifier.providers import Email, SmtpProvider
from services.notifier.providers.base import mime_bytes, mime_message

HTML = "<html><body><table>" + "<tr><td style=\"padding:8px;color:#333\">Pride Travelers</td></tr>" * 120 + "</table></body></html>"
TEXT = "Pat at Pride Travelers invited you to their client portal.\n" * 25


class Sink:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        return "250 OK"


def email(i: int) -> Email:
    return Email(to=f"client{i}@example.com", from_address="portal@pride.example", from_name="Pride Travelers",
                 reply_to="hello@pride.example", subject="Pat at Pride Travelers invited you", html=HTML, text=TEXT,
                 delivery_id=uuid.uuid4())


async def cpu_us(count: int, send) -> float:
    for i in range(min(count, 50)):  # warm: connection open, code paths hot
        await send(i)
    start = time.thread_time()
    for i in range(count):
        await send(i)
    return (time.thread_time() - start) / count * 1e6


async def main(count: int) -> None:
    controller = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=controller.port)
        await client.connect()
        data = mime_bytes(email(0))

        async def bare_bytes(i: int) -> None:
            await client.sendmail("portal@pride.example", [f"client{i}@example.com"], data)

        async def bare_stdlib(i: int) -> None:
            await client.send_message(mime_message(email(i)))

        floor = await cpu_us(count, bare_bytes)
        stdlib = await cpu_us(count, bare_stdlib)
        await client.quit()
        provider = SmtpProvider(NotifierSettings(database_url="unused", kafka_bootstrap_servers="unused",
                                                 porchlight_secret_key="b" * 40, smtp_port=controller.port))

        async def through_provider(i: int) -> None:
            assert (await provider.send(email(i))).status == "sent"

        ours = await cpu_us(count, through_provider)
        await provider.close()
    finally:
        controller.stop()
    print(f"{'':14}{'µs CPU/msg':>12}{'× floor':>10}")
    for label, value in (("bare bytes", floor), ("bare stdlib", stdlib), ("provider", ours)):
        print(f"{label:14}{value:12.0f}{value / floor:10.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    asyncio.run(main(parser.parse_args().count))
