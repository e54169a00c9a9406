"""How fast a page of the status list answers out of 100,000 accounts, next to a bare round trip.

    .venv/bin/python -m bench.list_query [--accounts 100000] [--repeat 300]

Seeds `account_status` directly (one workspace of N accounts in every state, plus a second
workspace as large, so the workspace filter matters), ANALYZEs, then times pages of 100
through `projections.queries` over asyncpg: the query, the rows' transfer and the view each
page is built into. The baseline in the same run is `SELECT 1` on the same pool. Goal: a
page in under 20 ms at p99. A second baseline fetches the first page's rows with a plain
`SELECT *`: what the transfer and asyncpg's decoding cost alone.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time

from bench.infra import database, percentile
from deploy.migrate import migrate_database
from projections import queries
from services.common.database import create_pool

SEED = """
INSERT INTO account_status (account_id, workspace, email, name, role, company, resources, status, invited_at,
                            invited_by, last_invite_sent_at, expires_at, activated_at, last_sign_in_at, sign_ins,
                            updated_at)
SELECT gen_random_uuid(), $1, 'user' || i || '@example.com',
       CASE WHEN i % 11 = 0 THEN NULL ELSE (ARRAY['Ann','Bob','Cy','Di','Ed','Flo'])[1 + i % 6] || ' Person' || i END,
       'customer', (ARRAY['Acme Charters','Blue Jets',NULL,'acme freight','Solo'])[1 + i % 5],
       jsonb_build_array(jsonb_build_object('type', 'trip', 'id', 'T-' || (i % 5000))),
       (ARRAY['pending','active','disabled','not_invited'])[1 + i % 4],
       now() - i * interval '1 minute', 'staff-1', now() - i * interval '1 minute',
       now() - i * interval '1 minute' + interval '7 days',
       CASE WHEN i % 4 IN (1, 2) THEN now() - i * interval '1 minute' + interval '1 hour' END,
       CASE WHEN i % 4 IN (1, 2) AND i % 5 <> 0 THEN now() - (i % 100000) * interval '13 second' END,
       CASE WHEN i % 4 IN (1, 2) AND i % 5 <> 0 THEN 1 ELSE 0 END,
       now()
FROM generate_series(1, $2) AS i
"""


async def _timed(call, repeat: int) -> list[float]:
    for _ in range(10):  # warm the plan cache and the buffers
        await call()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


async def main(accounts: int, repeat: int) -> None:
    with database() as url:
        await migrate_database(url)
        pool = await create_pool(url, max_size=4)
        ws, other = f"bench-{secrets.token_hex(3)}", f"bench-{secrets.token_hex(3)}"
        t0 = time.perf_counter()
        for slug in (ws, other):
            await pool.execute(SEED, slug, accounts)
        await pool.execute("VACUUM ANALYZE account_status")  # as autovacuum would have, long before
        print(f"seeded 2 x {accounts:,} accounts in {time.perf_counter() - t0:.1f} s\n")

        deep_cursor = None
        for _ in range(accounts // 2 // 200):  # half-way down the list
            _, deep_cursor = await queries.list_accounts(pool, ws, queries.AccountFilter(), 200, deep_cursor)
        F, O = queries.AccountFilter, queries.Ordering
        cases = {
            "baseline: SELECT 1": lambda: pool.fetchval("SELECT 1"),
            "baseline: 101 rows, SELECT *": lambda: pool.fetch(
                "SELECT * FROM account_status WHERE workspace = $1 ORDER BY invited_at DESC, account_id DESC LIMIT 101",
                ws),
            "first page, newest invite first": lambda: queries.list_accounts(pool, ws, F(), 100, None),
            "page half-way down (cursor)": lambda: queries.list_accounts(pool, ws, F(), 100, deep_cursor),
            "sort=name asc": lambda: queries.list_accounts(pool, ws, F(), 100, None, O("name", "asc")),
            "sort=last_sign_in_at desc": lambda: queries.list_accounts(
                pool, ws, F(), 100, None, O("last_sign_in_at", "desc")),
            "status=active": lambda: queries.list_accounts(pool, ws, F(status="active"), 100, None),
            "status=active sort=name": lambda: queries.list_accounts(
                pool, ws, F(status="active"), 100, None, O("name", "asc")),
            "link_expired=true": lambda: queries.list_accounts(pool, ws, F(link_expired=True), 100, None),
            "q=acme (common)": lambda: queries.list_accounts(pool, ws, F(q="acme"), 100, None),
            "q=person4242 (rare)": lambda: queries.list_accounts(pool, ws, F(q="person4242"), 100, None),
            # The same page as it was asked before: every trigram of the term in the index scan.
            "q=person4242, every trigram (before)": lambda: pool.fetch(
                f"SELECT {queries._COLUMNS} FROM account_status WHERE workspace = $1 AND {queries.SEARCH_TEXT} "
                "ILIKE $2 ORDER BY invited_at DESC, account_id DESC LIMIT 101", ws, "%person4242%"),
            "q=ann person (two common words)": lambda: queries.list_accounts(pool, ws, F(q="ann person"), 100, None),
            "resource trip T-42": lambda: queries.list_accounts(pool, ws, F(resource_type="trip", resource_id="T-42"),
                                                               100, None),
            "summary (counts per status)": lambda: queries.count_by_status(pool, ws),
        }
        print(f"{'query (page of 100)':40} {'p50 ms':>8} {'p99 ms':>8}")
        for name, call in cases.items():
            samples = await _timed(call, repeat)
            print(f"{name:40} {percentile(samples, 50):8.2f} {percentile(samples, 99):8.2f}")
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.repeat))
