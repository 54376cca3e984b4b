"""Search under adversarial queries (issue 25, finding 1): latency and PostgreSQL CPU per query shape on 1M posts,
for the code before the fix and this tree, in the same run.

    python -m bench.search                          # fills parley_bench_search once (1M posts), then reuses it
    python -m bench.search --posts 100000 --db parley_bench_search_100k   # a smaller forum
    python -m bench.search --no-before              # this tree only
    python -m bench.search --refill --drop          # fill again; drop the database at the end

The forum: `--posts` realistic posts (bench.qa's Zipf vocabulary and lengths; one in 50 holds "copper kettle
whistles", one in 20,000 "zanzibarite") in threads of ~10, then the `--long` newest posts 20,000 characters each:
"ka mo" repeated (their threads titled "ka mo …" too), 40 distinct short words cycled, and long natural text. Made
with COPY (secondary indexes of posts dropped meanwhile and rebuilt after); kept, and reused while its parameters
match (parley_meta 'bench_search').

Each query runs `--runs` times one after another on an idle server (the code before the fix: adversarial queries
once, ordinary ones 5 times, every statement stopped at `--before-cap` seconds so a run ends); the PostgreSQL CPU
of a request is that of the bench database's backends (psutil, read before and after it). Then a flood: `--flood`
clients repeat the finding's query for `--flood-seconds` while a probe reads the category list and a thread list.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil

from . import common
from .common import Http, Proc, fmt, parley_proc, summary_ms, table
from .qa import COMMON_WORDS, PHRASE, RARE, Texts

BEFORE = "7887bc2"  # the last commit before the fix
DISTINCT = ["w" + chr(97 + i // 26) + chr(97 + i % 26) for i in range(40)]  # short words that stem to themselves


def phrase(n: int) -> str:
    return '"' + " ".join((["ka", "mo"] * n)[:n]) + '"'


# (label, query parameters, adversarial?). `next` marks a second page (its cursor read from the first).
QUERIES: list[tuple[str, dict[str, str], bool]] = [
    ("common word", {"q": "water"}, False),
    ("common word, newest", {"q": "water", "sort": "newest"}, False),
    ("two common words", {"q": "kettle tea"}, False),
    ("rare word", {"q": RARE}, False),
    ("phrase", {"q": f'"{PHRASE}"'}, False),
    ("phrase, newest", {"q": f'"{PHRASE}"', "sort": "newest"}, False),
    ("common word, category", {"q": "kettle", "category": "child"}, False),
    ("common word, author", {"q": "kettle", "author": "bench7"}, False),
    ("common word, page 2", {"q": "kettle", "next": "1"}, False),
    ("13-word phrase (the finding)", {"q": phrase(13)}, True),
    ("13-word phrase, newest", {"q": phrase(13), "sort": "newest"}, True),
    ("13-word phrase, page 2", {"q": phrase(13), "next": "1"}, True),
    ("16-word phrase", {"q": phrase(16)}, True),
    ("17-word phrase", {"q": phrase(17)}, True),
    ("66-word phrase (200 chars)", {"q": phrase(66)}, True),
    ("ka mo (matches every long post)", {"q": "ka mo"}, True),
    ("16 distinct words", {"q": " ".join(DISTINCT[:16])}, True),
    ("16 distinct words, phrase", {"q": '"' + " ".join(DISTINCT[:16]) + '"'}, True),
    ("16 OR terms", {"q": " or ".join(DISTINCT[:16])}, True),
    ("16 OR terms, newest", {"q": " or ".join(DISTINCT[:16]), "sort": "newest"}, True),
    ("28 OR terms (200 chars)", {"q": " or ".join(DISTINCT[:28])}, True),
    ("1 word, 15 negations", {"q": "ka " + " ".join("-" + w for w in DISTINCT[:15])}, True),
    ("negations only", {"q": "-water -kettle -tea"}, True),
    ("common-word phrase no post holds", {"q": '"' + " ".join(reversed(COMMON_WORDS[:6])) + '"'}, True),
    ("common-word phrase, newest", {"q": '"' + " ".join(reversed(COMMON_WORDS[:6])) + '"', "sort": "newest"}, True),
    ("8 common words", {"q": " ".join(COMMON_WORDS[:8])}, True),
    ("stop words only", {"q": "the of and to in a"}, True),
    ("unicode", {"q": "東京 éclair Straße 😀 مرحبا"}, True),
    ("13-word phrase, category", {"q": phrase(13), "category": "root"}, True),
    ("13-word phrase, author", {"q": phrase(13), "author": "bench3"}, True),
]


# -- the forum ----------------------------------------------------------------

def long_body(kind: int, rng: random.Random, texts: Texts) -> str:
    if kind == 0:
        return " ".join(["ka", "mo"] * 3333)  # 19,997 characters
    if kind == 1:
        return " ".join(DISTINCT[i % 40] for i in range(5000))[:19999].strip()
    text = " ".join(rng.choices(texts.words, cum_weights=texts.cum, k=4000))  # ~5 characters a word
    return text[:text.rfind(" ", 0, 19999)]


async def fill(admin: str, name: str, posts: int, long: int, seed: int, refill: bool) -> dict[str, Any]:
    """The bench database `name`, filled unless it already holds this forum. Returns its URL and what it holds."""
    import asyncpg

    from server import migrations
    from tests.support import databases
    url = databases.with_db(admin, name)
    params = {"posts": posts, "long": long, "seed": seed, "version": 1}
    admin_conn = await asyncpg.connect(admin)
    try:
        exists = await admin_conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and not refill:
            conn = await asyncpg.connect(url)
            try:
                have = await conn.fetchval("SELECT value FROM parley_meta WHERE key = 'bench_search'")
            except asyncpg.PostgresError:
                have = None
            finally:
                await conn.close()
            if have is not None and json.loads(have) == params:
                conn = await asyncpg.connect(url)
                try:
                    await migrations.migrate(conn)  # a later tree may have added migrations
                finally:
                    await conn.close()
                return {"url": url, "reused": True, **params}
        if exists:
            await admin_conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin_conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin_conn.close()
    t0 = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn)
        rng = random.Random(seed)
        texts = Texts(rng)
        await conn.copy_records_to_table("users", columns=["id", "username", "display_name", "password_hash"],
                                         records=[(i, f"bench{i}", f"Bench {i}", "x") for i in range(1, 1001)])
        await conn.execute("INSERT INTO categories (id, slug, name, parent_id) VALUES (1, 'root', 'Root', NULL),"
                           " (2, 'child', 'Child', 1), (3, 'other', 'Other', NULL)")
        # Secondary indexes of posts are rebuilt after the COPY (much faster than kept up row by row).
        indexes = [r["indexdef"] for r in await conn.fetch(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'posts' AND indexname <> 'posts_pkey'")]
        for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'posts'"
                                  " AND indexname <> 'posts_pkey'"):
            await conn.execute(f'DROP INDEX "{r["indexname"]}"')
        normal_threads = max(1, posts // 10)
        long_threads = max(1, long // 10)
        start = datetime.now(UTC) - timedelta(days=365)
        thread_rows = []
        per_thread: list[int] = []
        for t in range(1, normal_threads + long_threads + 1):
            created = start + timedelta(seconds=t * 60)
            if t <= normal_threads:
                title = texts.title()
            else:
                kind = (t - normal_threads) % 3
                title = (" ".join(["ka", "mo"] * 33) if kind == 0 else " ".join(DISTINCT[:30]) if kind == 1
                         else texts.title())
            thread_rows.append((t, 1 + t % 3, 1 + t % 1000, title, created, created, 0, 1))
        await conn.copy_records_to_table(
            "threads", columns=["id", "category_id", "author_id", "title", "created_at", "last_activity_at",
                                "response_count", "seq"], records=thread_rows)
        # Posts: each normal thread a question and its share of the rest; then the long threads, 10 posts each.
        rest = posts - normal_threads
        per_thread = [0] * normal_threads
        for _ in range(max(0, rest)):
            per_thread[rng.randrange(normal_threads)] += 1
        pid = 0
        batch: list[tuple[Any, ...]] = []
        columns = ["id", "thread_id", "parent_id", "kind", "author_id", "body", "html", "created_at"]

        async def flush() -> None:
            if batch:
                await conn.copy_records_to_table("posts", columns=columns, records=batch)
                batch.clear()

        for t in range(1, normal_threads + long_threads + 1):
            created = start + timedelta(seconds=t * 60)
            is_long = t > normal_threads
            n = 9 if is_long else per_thread[t - 1]
            question = pid + 1
            for k in range(n + 1):
                pid += 1
                if is_long:
                    body = long_body((t - normal_threads) % 3 if k == 0 else pid % 3, rng, texts)
                else:
                    body = texts.body(pid)
                batch.append((pid, t, None if k == 0 else question, "question" if k == 0 else "response",
                              1 + rng.randrange(1000), body, "<p>" + body + "</p>", created))
            if len(batch) >= 20000:
                await flush()
        await flush()
        await conn.execute("UPDATE threads t SET response_count = c.n FROM (SELECT thread_id, count(*) - 1 AS n"
                           " FROM posts GROUP BY thread_id) c WHERE c.thread_id = t.id")
        for table_name in ("users", "categories", "threads", "posts"):
            await conn.execute(f"SELECT setval('{table_name}_id_seq', (SELECT max(id) FROM {table_name}))")
        copy_s = time.perf_counter() - t0
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for sql in indexes:
            await conn.execute(sql)
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("INSERT INTO parley_meta (key, value) VALUES ('bench_search', $1)", json.dumps(params))
        return {"url": url, "reused": False, **params, "posts_made": pid, "threads_made": len(thread_rows),
                "copy_s": round(copy_s, 1), "fill_s": round(time.perf_counter() - t0, 1)}
    finally:
        await conn.close()


# -- measuring ------------------------------------------------------------------

class Backends:
    """CPU seconds used so far by the bench database's backends (our own monitoring one excepted)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None

    async def open(self) -> Backends:
        import asyncpg
        self.conn = await asyncpg.connect(self.url)
        return self

    async def cpu(self) -> dict[int, float]:
        pids = await self.conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                     " AND pid <> pg_backend_pid()")
        out = {}
        for r in pids:
            try:
                t = psutil.Process(r["pid"]).cpu_times()
                out[r["pid"]] = t.user + t.system
            except psutil.Error:
                pass
        return out

    async def close(self) -> None:
        await self.conn.close()


def path_of(params: dict[str, str], cursor: str | None = None) -> str:
    query = {k: v for k, v in params.items() if k != "next"}
    if cursor:
        query["before"] = cursor
    return "/api/search?" + urlencode(query)


async def one(http: Http, backends: Backends, path: str, timeout: float) -> tuple[float, float, int, bytes]:
    """(ms, PostgreSQL CPU ms, status, body) of one request."""
    before = await backends.cpu()
    t = time.perf_counter()
    try:
        status, body, _ = await asyncio.wait_for(http.request("GET", path), timeout)
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        http.close()
        status, body = 0, b""
    ms = (time.perf_counter() - t) * 1000
    after = await backends.cpu()
    pg = sum(v - before.get(pid, 0.0) for pid, v in after.items())
    return ms, pg * 1000, status, body


async def measure(server: Proc, backends: Backends, runs: int, before_mode: bool, timeout: float) -> dict[str, Any]:
    http = Http(server.port)
    out: dict[str, Any] = {}
    for label, params, adversarial in QUERIES:
        n = (1 if adversarial else min(5, runs)) if before_mode else runs
        cursor = None
        if "next" in params:  # the second page: its cursor from the first
            _, _, status, body = await one(http, backends, path_of(params), timeout)
            cursor = json.loads(body).get("next") if status == 200 else None
            if cursor is None:
                out[label] = {"skipped": f"no second page (first page {status})"}
                continue
        lat, pg, codes = [], [], {}
        found = None
        for _ in range(n):
            ms, pg_ms, status, body = await one(http, backends, path_of(params, cursor), timeout)
            lat.append(ms)
            pg.append(pg_ms)
            codes[status] = codes.get(status, 0) + 1
            if status == 200:
                found = len(json.loads(body)["results"])
        pg.sort()
        # psutil reads CPU in clock ticks (10 ms): the mean over the runs is finer than any one request's figure
        out[label] = {**summary_ms(lat), "pg_mean_ms": sum(pg) / n, "pg_max_ms": pg[-1], "codes": codes,
                      "results": found}
        r = out[label]
        print(f"  {label:36s} p50 {fmt(r['p50_ms']):>9} ms  max {fmt(r['max_ms']):>9} ms  "
              f"pg {fmt(r['pg_mean_ms']):>9} ms  {codes}  results {found}", flush=True)
    http.close()
    return out


async def flood(server: Proc, clients: int, seconds: float, timeout: float) -> dict[str, Any]:
    """`clients` connections repeating the finding's query; meanwhile a probe reads two lists."""
    stop = time.perf_counter() + seconds
    codes: dict[int, int] = {}
    lat: list[float] = []

    async def attacker() -> None:
        http = Http(server.port)
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                status, _, _ = await asyncio.wait_for(http.request("GET", path_of({"q": phrase(13)})), timeout)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                http.close()
                status = 0
            lat.append((time.perf_counter() - t) * 1000)
            codes[status] = codes.get(status, 0) + 1
        http.close()

    probe_lat: list[float] = []
    probe_codes: dict[int, int] = {}

    async def probe() -> None:
        http = Http(server.port)
        i = 0
        while time.perf_counter() < stop:
            t = time.perf_counter()
            path = "/api/categories" if i % 2 else "/api/threads?limit=20"
            status, _, _ = await http.request("GET", path)
            probe_lat.append((time.perf_counter() - t) * 1000)
            probe_codes[status] = probe_codes.get(status, 0) + 1
            i += 1
            await asyncio.sleep(0.05)
        http.close()

    await asyncio.gather(probe(), *(attacker() for _ in range(clients)))
    return {"search": {**summary_ms(lat), "codes": codes}, "probe": {**summary_ms(probe_lat), "codes": probe_codes}}


def before_tree(ref: str) -> Path:
    """The code at `ref`, exported (git archive) into a temporary folder."""
    path = Path(tempfile.mkdtemp(prefix="parley-before-"))
    archive = subprocess.run(["git", "archive", ref], cwd=common.ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    return path


def report(results: dict[str, dict[str, Any]]) -> str:
    rows = []
    for label, _, adversarial in QUERIES:
        row: dict[str, Any] = {"query": label + (" *" if adversarial else "")}
        for side in ("before", "after"):
            r = results.get(side, {}).get(label)
            if not r or "skipped" in r:
                continue
            row[f"{side}_p50"] = r["p50_ms"]
            row[f"{side}_p99"] = r["p99_ms"]
            row[f"{side}_max"] = r["max_ms"]
            row[f"{side}_pg"] = r["pg_mean_ms"]
            row[f"{side}_codes"] = ",".join(f"{k}×{v}" for k, v in sorted(r["codes"].items()))
        rows.append(row)
    cols = [("query", "query (* adversarial)")]
    for side in ("before", "after"):
        if side in results:
            cols += [(f"{side}_p50", f"{side} p50 ms"), (f"{side}_p99", "p99"), (f"{side}_max", "max"),
                     (f"{side}_pg", "pg CPU ms (mean)"), (f"{side}_codes", "status")]
    return table(rows, cols)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="parley_bench_search", help="the bench database (kept between runs)")
    ap.add_argument("--posts", type=int, default=1_000_000, help="realistic posts")
    ap.add_argument("--long", type=int, default=2000, help="20,000-character posts, the newest")
    ap.add_argument("--seed", type=int, default=25)
    ap.add_argument("--refill", action="store_true", help="fill the database again even if it matches")
    ap.add_argument("--drop", action="store_true", help="drop the database at the end")
    ap.add_argument("--runs", type=int, default=20, help="requests per query (this tree)")
    ap.add_argument("--before", default=BEFORE, help="the commit measured as 'before'")
    ap.add_argument("--no-before", action="store_true")
    ap.add_argument("--before-cap", type=float, default=20, help="statement_timeout of the 'before' server (s)")
    ap.add_argument("--flood", type=int, default=20, help="clients repeating the finding's query")
    ap.add_argument("--flood-seconds", type=float, default=10)
    args = ap.parse_args()
    made = asyncio.run(fill(common.PG_ADMIN, args.db, args.posts, args.long, args.seed, args.refill))
    print(f"forum: {made}", flush=True)
    url = made["url"]
    procs: list[Proc] = []
    tree = None
    results: dict[str, Any] = {}
    try:
        after = parley_proc(url, name="search-after")
        procs.append(after.start())
        if not args.no_before:
            tree = before_tree(args.before)
            before = parley_proc(f"{url}?statement_timeout={int(args.before_cap * 1000)}", name="search-before",
                                 cwd=tree, PYTHONPATH=str(tree))
            procs.append(before.start())

        async def run() -> None:
            backends = await Backends(url).open()
            try:
                print(f"after ({args.runs} runs each):", flush=True)
                results["after"] = await measure(after, backends, args.runs, False, 30)
                if not args.no_before:
                    print(f"before ({args.before}; adversarial once, ordinary 5 times; cut at {args.before_cap} s):",
                          flush=True)
                    results["before"] = await measure(before, backends, args.runs, True, args.before_cap + 10)
                if args.flood:
                    results["flood_after"] = await flood(after, args.flood, args.flood_seconds, 30)
                    print(f"flood, {args.flood} clients × the finding's query for {args.flood_seconds} s:"
                          f" {results['flood_after']}", flush=True)
            finally:
                await backends.close()

        asyncio.run(run())
        print(report(results))
        path = common.write_result("search", {"args": vars(args), "forum": made, "results": results})
        print(f"results: {path}")
    finally:
        for p in reversed(procs):
            p.stop()
        if tree is not None:
            shutil.rmtree(tree, ignore_errors=True)
        if args.drop:
            from tests.support import databases
            databases.drop_database(common.PG_ADMIN, url)


if __name__ == "__main__":
    main()
