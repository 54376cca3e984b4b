"""Tags and similar questions at 1M posts (issue 30): GET /api/threads/similar and tag-filtered thread lists, p50/p99
over HTTP on an idle server, and the query plans (EXPLAIN ANALYZE) for bench/README.md.

    python -m bench.tags                 # reuses bench.search's forum (parley_bench_search, 1M posts), tags it once
    python -m bench.tags --runs 200

The forum is bench.search's (filled once by it: 100,000 threads of ~10 posts, bench.qa's Zipf vocabulary). Tags are
added once (parley_meta 'bench_tags'): 500 names, each thread 1–3 of them drawn Zipf-like, so `t0` is on about a third
of the threads and the last ones on a handful. Similar questions are asked with real titles of the forum with one word
dropped and two swapped (a paraphrase of sorts), each title once per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any
from urllib.parse import urlencode

from . import common
from .common import Http, parley_proc, summary_ms, table
from .search import fill

TAGS = 500


async def tag_forum(url: str, seed: int) -> dict[str, Any]:
    """Tags on the forum's threads, once; returns how many of each of a few."""
    import asyncpg
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT value FROM parley_meta WHERE key = 'bench_tags'") is None:
            t0 = time.perf_counter()
            await conn.execute("INSERT INTO tags (name) SELECT 't' || i FROM generate_series(0, $1 - 1) i", TAGS)
            # Zipf-like: tag index floor(TAGS ^ random) - 1, 1–3 distinct per thread.
            await conn.execute(f"""
                WITH picks AS (
                    SELECT DISTINCT t.id AS thread_id,
                           floor(power({TAGS}, random()))::int - 1 AS i
                    FROM threads t, generate_series(1, 1 + (t.id % 3)) n
                )
                INSERT INTO thread_tags (tag_id, thread_id, last_activity_at, created_at, score, response_count)
                SELECT g.id, t.id, t.last_activity_at, t.created_at, t.score, t.response_count
                FROM picks p JOIN tags g ON g.name = 't' || p.i JOIN threads t ON t.id = p.thread_id
                ON CONFLICT DO NOTHING""")
            await conn.execute("""UPDATE threads t SET tags = x.names FROM (
                SELECT tt.thread_id, array_agg(g.name ORDER BY g.name) AS names FROM thread_tags tt
                JOIN tags g ON g.id = tt.tag_id GROUP BY tt.thread_id) x WHERE x.thread_id = t.id""")
            await conn.execute("VACUUM ANALYZE threads")
            await conn.execute("VACUUM ANALYZE thread_tags")
            await conn.execute("VACUUM ANALYZE tags")
            await conn.execute("INSERT INTO parley_meta (key, value) VALUES ('bench_tags', $1)",
                               json.dumps({"tags": TAGS, "seed": seed, "s": round(time.perf_counter() - t0, 1)}))
        rows = await conn.fetch("SELECT name, count FROM tags WHERE count > 0 ORDER BY count DESC, name")
        return {"t0": rows[0]["count"], "median": rows[len(rows) // 2]["count"], "least": rows[-1]["count"],
                "rare": rows[-1]["name"], "rows": await conn.fetchval("SELECT count(*) FROM thread_tags"),
                "posts": await conn.fetchval("SELECT count(*) FROM posts"),
                "threads": await conn.fetchval("SELECT count(*) FROM threads")}
    finally:
        await conn.close()


async def titles(url: str, n: int, seed: int) -> list[str]:
    import asyncpg
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT title FROM threads WHERE NOT deleted ORDER BY id LIMIT 20000")
    finally:
        await conn.close()
    rng = random.Random(seed)
    out = []
    for r in rng.sample(list(rows), n):
        words = r["title"].split()
        if len(words) > 3:
            words.pop(rng.randrange(len(words)))
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        out.append(" ".join(words))
    return out


async def plans(url: str, rare: str) -> dict[str, str]:
    """EXPLAIN ANALYZE of the statements measured, as the server runs them."""
    import asyncpg

    from server.store import similar, threads
    conn = await asyncpg.connect(url)
    out = {}
    try:
        tag_id = await conn.fetchval("SELECT id FROM tags WHERE name = 't0'")
        rare_id = await conn.fetchval("SELECT id FROM tags WHERE name = $1", rare)
        title = await conn.fetchval("SELECT title FROM threads ORDER BY id LIMIT 1 OFFSET 777")
        vocabulary = similar.Vocabulary()
        await vocabulary.refresh(conn)
        words = vocabulary.telling(await conn.fetchval(similar.WORDS_SQL, title, ""))
        async with conn.transaction():
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            out[f"similar ({title!r}, words {words})"] = "\n".join(r[0] for r in await conn.fetch(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + similar.SIMILAR_SQL, title, words))
        for name, tid in (("t0", tag_id), (rare, rare_id)):
            out[f"list tag={name} sort=activity"] = "\n".join(r[0] for r in await conn.fetch(
                "EXPLAIN (ANALYZE, COSTS OFF) " + threads.list_query("activity", None, False, False, True), 21, tid))
    finally:
        await conn.close()
    return out


async def measure(port: int, paths: list[str], timeout: float = 30) -> dict[str, Any]:
    http = Http(port)
    times, statuses = [], {}
    try:
        for path in paths:
            t = time.perf_counter()
            status, _, _ = await asyncio.wait_for(http.request("GET", path), timeout)
            times.append((time.perf_counter() - t) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        http.close()
    return {**summary_ms(times), "statuses": statuses}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="parley_bench_search", help="bench.search's database (filled if missing)")
    ap.add_argument("--posts", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=100, help="requests per case")
    ap.add_argument("--seed", type=int, default=30)
    args = ap.parse_args()
    made = asyncio.run(fill(common.PG_ADMIN, args.db, args.posts, 2000, 25, False))
    url = made["url"]
    forum = asyncio.run(tag_forum(url, args.seed))
    print(f"forum: {made} tags: {forum}", flush=True)
    asked = asyncio.run(titles(url, args.runs, args.seed))
    server = parley_proc(url, name="tags", PARLEY_RATE_LIMITS="off")
    server.start()
    results: dict[str, Any] = {}
    try:
        async def run() -> None:
            await measure(server.port, ["/api/threads?tag=t0"] * 5)  # warm the pool and caches
            results["similar"] = await measure(server.port, [
                "/api/threads/similar?" + urlencode({"title": t}) for t in asked])
            for tag in ("t0", "t5", forum["rare"]):
                for sort in ("activity", "newest", "top"):
                    results[f"list tag={tag} sort={sort}"] = await measure(
                        server.port, [f"/api/threads?tag={tag}&sort={sort}&limit=20"] * args.runs)
            results["list tag=t0 filter=unanswered"] = await measure(
                server.port, ["/api/threads?tag=t0&filter=unanswered&limit=20"] * args.runs)
        asyncio.run(run())
    finally:
        server.stop()
    explained = asyncio.run(plans(url, forum["rare"]))
    rows = [{"case": k, **v} for k, v in results.items()]
    print(table(rows, [("case", "case"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms"),
                       ("n", "n"), ("statuses", "statuses")]))
    for name, plan in explained.items():
        print(f"\n-- {name}\n{plan}")
    path = common.write_result("tags", {"args": vars(args), "forum": {**made, **forum}, "results": results,
                                        "plans": explained})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
