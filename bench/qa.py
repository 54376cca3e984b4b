"""Q&A at scale (issue 14): a generated forum, the Q&A migration's time on it, then search, thread lists and
one big thread page, each at a fixed concurrency.

    python -m bench.qa                                  # 100k threads, ~1M posts (the issue's size)
    python -m bench.qa --threads 10000 --duration 3     # a quick run

The forum is made at the version before the Q&A migration with COPY (threads, then posts with a Zipf
vocabulary and realistic lengths), so that migrating it measures adding the search column, backfilling
it and building every new index on real data. One thread gets 1,000 responses for the thread page.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from . import common
from .common import Env, Http, parley_proc, summary_ms

COMMON_WORDS = ("water kettle tea heat boil steam cup pot time make good work home question answer people way "
                "day use know think help need try find want thing look").split()
PHRASE = "copper kettle whistles"  # planted in one post in 50, so a phrase query has work to do
RARE = "zanzibarite"               # planted in one post in 20,000


def vocabulary(rng: random.Random, size: int = 20000) -> list[str]:
    letters = "etaoinshrdlcumwfgypbvk"
    words = set(COMMON_WORDS)
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(words, key=lambda w: (w not in COMMON_WORDS, w))


class Texts:
    """Bodies drawn from a Zipf-like distribution over the vocabulary; lengths roughly log-normal."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = vocabulary(rng)
        weights = [1 / (i + 1) for i in range(len(self.words))]
        self.cum = list(_accumulate(weights))

    def body(self, i: int) -> str:
        n = max(3, min(400, int(self.rng.lognormvariate(3.6, 0.7))))  # median ~37 words
        words = self.rng.choices(self.words, cum_weights=self.cum, k=n)
        if i % 50 == 0:
            words.insert(n // 2, PHRASE)
        if i % 20000 == 7:
            words.append(RARE)
        return " ".join(words)

    def title(self) -> str:
        words = self.rng.choices(self.words, cum_weights=self.cum, k=self.rng.randint(4, 10))
        return " ".join(words).capitalize() + "?"


def _accumulate(values: list[float]) -> Any:
    total = 0.0
    for v in values:
        total += v
        yield total


async def fill(url: str, threads: int, per_thread: int, seed: int) -> dict[str, Any]:
    """Users, categories, threads and posts by COPY at the version before the Q&A migration."""
    import asyncpg

    from server import migrations
    rng = random.Random(seed)
    texts = Texts(rng)
    conn = await asyncpg.connect(url)
    try:
        qa = next(m.version for m in migrations.available() if m.name == "qa")
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await migrations.migrate(conn, target=qa - 1)
        t0 = time.perf_counter()
        await conn.copy_records_to_table("users", columns=["id", "username", "display_name", "password_hash"],
                                         records=[(i, f"bench{i}", f"Bench {i}", "x") for i in range(1, 1001)])
        await conn.execute("INSERT INTO categories (id, slug, name, parent_id) VALUES (1, 'root', 'Root', NULL),"
                           " (2, 'child', 'Child', 1), (3, 'other', 'Other', NULL)")
        start = datetime.now(UTC) - timedelta(days=365)
        thread_rows, post_rows = [], []
        pid = 0
        big = threads // 2 + 1  # the thread with 1,000 responses
        for t in range(1, threads + 1):
            created = start + timedelta(seconds=t * 300)
            n = 1000 if t == big else max(0, int(rng.expovariate(1 / max(per_thread - 1, 1))))
            comments = rng.randint(0, 3) if n else 0
            last = created + timedelta(seconds=60 * (n + comments))
            thread_rows.append((t, 1 + t % 3, 1 + t % 1000, texts.title(), created, last, n, 1 + n + comments))
            pid += 1
            question = pid
            post_rows.append((pid, t, None, "question", 1 + t % 1000, texts.body(pid), created))
            first_response = None
            for _ in range(n):
                pid += 1
                first_response = first_response or pid
                post_rows.append((pid, t, question, "response", 1 + rng.randrange(1000), texts.body(pid), created))
            for _ in range(comments):
                pid += 1
                post_rows.append((pid, t, first_response, "comment", 1 + rng.randrange(1000), texts.body(pid), created))
        await conn.copy_records_to_table(
            "threads", columns=["id", "category_id", "author_id", "title", "created_at", "last_activity_at",
                                "response_count", "seq"], records=thread_rows)
        await conn.copy_records_to_table(
            "posts", columns=["id", "thread_id", "parent_id", "kind", "author_id", "body", "html", "created_at"],
            records=[(p[0], p[1], p[2], p[3], p[4], p[5], "<p>" + p[5] + "</p>", p[6]) for p in post_rows])
        await conn.execute("UPDATE posts SET score = (id * 7919) % 11 - 3 WHERE id % 3 = 0")
        for table in ("users", "categories", "threads", "posts"):
            await conn.execute(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
        fill_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await migrations.migrate(conn)
        migrate_s = time.perf_counter() - t0
        await conn.execute("ANALYZE")
        return {"threads": threads, "posts": pid, "fill_s": round(fill_s, 1), "migrate_qa_s": round(migrate_s, 1),
                "big_thread": big}
    finally:
        await conn.close()


async def measure(port: int, paths: list[str], concurrency: int, duration: float) -> dict[str, Any]:
    """Closed loop: `concurrency` keep-alive connections cycling through `paths` for `duration` seconds."""
    lat: list[float] = []
    codes: dict[int, int] = {}
    stop = time.perf_counter() + duration

    async def worker(k: int) -> None:
        http = Http(port)
        i = k
        while time.perf_counter() < stop:
            t = time.perf_counter()
            status, _, _ = await http.request("GET", paths[i % len(paths)])
            lat.append((time.perf_counter() - t) * 1000)
            codes[status] = codes.get(status, 0) + 1
            i += concurrency
        http.close()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {**summary_ms(lat), "qps": round(len(lat) / elapsed, 1), "codes": codes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=100_000)
    ap.add_argument("--per-thread", type=int, default=10, help="mean posts per thread (question included)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()
    env = Env(common.create_db())
    try:
        made = asyncio.run(fill(env.db_url, args.threads, args.per_thread, args.seed))
        print(f"filled {made['posts']} posts in {made['threads']} threads in {made['fill_s']} s; "
              f"the Q&A migration took {made['migrate_qa_s']} s")
        server = env.add(parley_proc(env.db_url))
        q = lambda text: f"/api/search?q={quote(text)}"  # noqa: E731
        workloads: dict[str, list[str]] = {
            "search common": [q(w) for w in COMMON_WORDS[:8]],
            "search rare": [q(RARE)],
            "search phrase": [q(f'"{PHRASE}"')],
            "search newest": [q(w) + "&sort=newest" for w in COMMON_WORDS[:8]],
        }
        for sort in ("activity", "newest", "top"):
            workloads[f"list {sort}"] = [f"/api/threads?sort={sort}"]
            workloads[f"list {sort} unanswered"] = [f"/api/threads?sort={sort}&filter=unanswered"]
            workloads[f"category {sort}"] = [f"/api/categories/root/threads?sort={sort}"]
        workloads["thread of 1000 responses"] = [f"/api/threads/{made['big_thread']}"]
        results = {}
        for name, paths in workloads.items():
            r = asyncio.run(measure(server.port, paths, args.concurrency, args.duration))
            results[name] = r
            print(f"{name:28s} p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  {r['qps']:7.1f}/s  {r['codes']}")
        path = common.write_result("qa", {"args": vars(args), "forum": made, "results": results})
        print(f"results: {path}")
    finally:
        env.close(keep_db=args.keep_db)


if __name__ == "__main__":
    main()
