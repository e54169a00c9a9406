"""CPU per rendered invite email, next to a bare Jinja2 render of the same template in the same run.

    python -m bench.render_messages [--count 5000]

Prints microseconds of CPU per message for:
  baseline   the invite's body.html rendered by Jinja2 (no inlining, no text part, no subject)
  scratch    the whole email rendered from scratch: subject, HTML with CSS inlined, text
  cached     render_invite as sent: a skeleton per workspace and message shape, filled per recipient
  outgoing   messages_for on an InviteSent envelope: the claim link's HMAC plus `cached`
No database, broker or network: rendering only.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import datetime, timedelta, timezone

from contracts.access import Actor, InviteSent, InviteSentV1, Sender, event_id_for
from services.messages import messages_for, render_invite
from services.messages.branding import safe_branding
from services.messages.rendering import format_expiry, render_uncached, template

SENDER = Sender(workspace_name="Pride Travelers", sender_name="Pride Travelers", brand_color="#C2185B",
                logo_url="https://cdn.example.com/pride.png", reply_to="hello@pride.example",
                portal_description="Your trips, documents and invoices in one place.",
                portal_url="https://app.pride.example/portal", time_zone="Europe/Lisbon")
LINK = "https://portal.example.com/portal/pride-travelers/claim/{i}.Sxe98j_d6s4gSs3wu9aiXshRnjxroE-z"


def invites(count: int) -> list[InviteSent]:
    expires = datetime(2030, 7, 15, 9, 30, tzinfo=timezone.utc)
    return [InviteSent(workspace="pride-travelers", account_id=uuid.uuid4(), email=f"client{i}@example.com",
                       name=f"Client {i}", nonce=f"n{i}", expires_at=expires + timedelta(seconds=i),
                       inviter_name="Pat", sender=SENDER) for i in range(count)]


def cpu_us(label: str, count: int, run) -> float:
    run(min(count, 50))  # warm: templates compiled, caches filled, as in a running notifier
    start = time.process_time_ns()
    run(count)
    per = (time.process_time_ns() - start) / count / 1000
    print(f"  {label:<10} {per:9.1f} us/message")
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    count = parser.parse_args().count
    items = invites(count)
    body = template("invite/body.html")
    brand = safe_branding(SENDER)
    fixed = {"sender": brand, "kind": "invite", "button": "Accept invitation"}

    def values(i: int) -> dict[str, str | None]:
        inv = items[i]
        return {"name": inv.name, "inviter": "Pat", "email": inv.email, "link": LINK.format(i=i),
                "expires": format_expiry(inv.expires_at, brand.time_zone)}

    def bare(n: int) -> None:
        for i in range(n):
            body.render(fixed, **values(i), subject="Pat at Pride Travelers invited you to their client portal")

    def scratch(n: int) -> None:
        for i in range(n):
            render_uncached("invite", fixed, values(i), from_name=brand.display_name, reply_to=brand.reply_to)

    def cached(n: int) -> None:
        for i in range(n):
            render_invite(items[i], LINK.format(i=i))

    envelopes = [
        InviteSentV1(event_id=event_id_for(uuid.uuid4(), 1), workspace="pride-travelers", account_id=inv.account_id,
                     aggregate_id=uuid.uuid4(), aggregate_version=1, position=i + 1,
                     occurred_at=datetime.now(timezone.utc), actor=Actor(kind="staff", id="staff-7"), data=inv)
        for i, inv in enumerate(items)
    ]
    key = b"k" * 32

    def outgoing(n: int) -> None:
        for i in range(n):
            messages_for(envelopes[i], secret_key=key, public_base_url="https://portal.example.com")

    print(f"CPU per invite email, {count} emails, one workspace:")
    base = cpu_us("baseline", count, bare)
    for label, run in (("scratch", scratch), ("cached", cached), ("outgoing", outgoing)):
        per = cpu_us(label, count, run)
        print(f"  {'':<10} {per / base:9.2f} x baseline")


if __name__ == "__main__":
    main()
