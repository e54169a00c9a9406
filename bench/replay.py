"""How fast `porchlight replay` rebuilds the read models, next to reading the log alone.

    .venv/bin/python -m bench.replay [--events 100000]

Seeds a fresh event store with invites (two events each: AccountCreated, InviteSent),
then, in the same run on the same server: the baseline, reading the whole notification
log with the library's `select_notifications` in pages; and the replay, from the first
read to the swapped-in tables (log read, envelopes, the projector's handlers, the swap).
Goal: replay >= 1/3 of the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

from bench.infra import database
from deploy.migrate import migrate_database
from deploy.replay import Replay
from services.common.database import create_pool, eventsourcing_env
from services.invite_service.application import InviteCommand, PortalAccess

STAFF = {"kind": "staff", "id": "bench", "reason": None}
PAGE = 2000


async def seed(access: PortalAccess, events: int) -> None:
    ws = f"bench-{secrets.token_hex(3)}"
    await access.configure_workspace(ws, {"plan": "pro"}, STAFF)
    invites = events // 2
    for offset in range(0, invites, 500):  # 500 commands at a time group-commit together
        await asyncio.gather(*(
            access.invite(ws, InviteCommand(email=f"r{i}@example.com", name=f"R {i}", role="customer",
                                            company="Acme Charters"), STAFF)
            for i in range(offset, min(invites, offset + 500))
        ))


def read_rate(access: PortalAccess) -> tuple[int, float]:
    t0, position, count = time.perf_counter(), 0, 0
    while page := access.recorder.select_notifications(position + 1, PAGE):
        count += len(page)
        position = page[-1].id
    return count, count / (time.perf_counter() - t0)


async def replay_rate(url: str, access: PortalAccess) -> tuple[int, float, dict[str, float]]:
    pool = await create_pool(url, max_size=3)
    try:
        t0 = time.perf_counter()
        result = await Replay(access, pool, page_size=PAGE).run()
        return result.events, result.events / (time.perf_counter() - t0), result.phases
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with database() as url:
        asyncio.run(migrate_database(url))
        access = PortalAccess(eventsourcing_env(url), secret_key=b"b" * 32)
        t0 = time.perf_counter()
        asyncio.run(seed(access, args.events))
        seeded = time.perf_counter() - t0
        events, reading = read_rate(access)
        replayed, replaying, phases = asyncio.run(replay_rate(url, access))
        access.close()
    print(f"\n{events:,} events in the log (seeded in {seeded:.1f} s)")
    print(f"{'measurement':<48}{'events/s':>10}")
    print(f"{'baseline: read the notification log (pages)':<48}{reading:>10,.0f}")
    print(f"{'replay: read, decode, fold, COPY, swap':<48}{replaying:>10,.0f}   ({replayed:,} events)")
    print(f"replay / baseline: {replaying / reading:.2f} (goal >= 0.33)")
    print("replay's steps: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()))


if __name__ == "__main__":
    main()
