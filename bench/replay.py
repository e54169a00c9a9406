"""How fast `porchlight replay` rebuilds the read models, next to reading the log alone.

    .venv/bin/python -m bench.replay [--events 100000]

Seeds a fresh event store with invites (two events each: AccountCreated, InviteSent),
then, in the same run on the same server: the baseline, reading the whole notification
log with the library's `select_notifications` in pages; and the replay, from the first
read to the swapped-in tables (log read, decoding and folding in the worker processes,
COPY, indexes, the swap). Goal: replay >= 1/3 of the baseline.

Also printed: the CPU seconds replay took in this process and in its worker processes
(not PostgreSQL's), which a machine shared with other work changes less than the rates.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
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


def read_rate(access: PortalAccess) -> tuple[int, float, float]:
    """Events read, per second, and the CPU seconds the read took in this process."""
    t0, cpu0, position, count = time.perf_counter(), time.process_time(), 0, 0
    while page := access.recorder.select_notifications(position + 1, PAGE):
        count += len(page)
        position = page[-1].id
    return count, count / (time.perf_counter() - t0), time.process_time() - cpu0


async def replay_rate(url: str, access: PortalAccess, workers: int | None = None,
                      ) -> tuple[int, float, dict[str, float]]:
    pool = await create_pool(url, max_size=3)
    try:
        t0, cpu0, children0 = time.perf_counter(), time.process_time(), _children_cpu()
        result = await Replay(access, pool, page_size=PAGE, **({"workers": workers} if workers else {})).run()
        phases = {**result.phases, "CPU here": time.process_time() - cpu0,
                  "CPU in workers": _children_cpu() - children0}
        return result.events, result.events / (time.perf_counter() - t0), phases
    finally:
        await pool.close()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # ended children only: the workers, once waited for
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=None, help="replay's worker processes (default: its own)")
    args = parser.parse_args()
    with database() as url:
        asyncio.run(migrate_database(url))
        access = PortalAccess(eventsourcing_env(url), secret_key=b"b" * 32)
        t0 = time.perf_counter()
        asyncio.run(seed(access, args.events))
        seeded = time.perf_counter() - t0
        events, reading, reading_cpu = read_rate(access)
        replayed, replaying, phases = asyncio.run(replay_rate(url, access, args.workers))
        access.close()
    print(f"\n{events:,} events in the log (seeded in {seeded:.1f} s)")
    print(f"{'measurement':<48}{'events/s':>10}")
    print(f"{'baseline: read the notification log (pages)':<48}{reading:>10,.0f}")
    print(f"{'replay: read, decode, fold, COPY, swap':<48}{replaying:>10,.0f}   ({replayed:,} events)")
    print(f"replay / baseline: {replaying / reading:.2f} (goal >= 0.33)")
    print("replay's steps: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()
                                         if not name.startswith("CPU")))
    print(f"CPU: baseline {reading_cpu:.2f} s; replay {phases['CPU here']:.2f} s here, "
          f"{phases['CPU in workers']:.2f} s in worker processes")


if __name__ == "__main__":
    main()
