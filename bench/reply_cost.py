"""What PostgreSQL does for one reply (issue 33): the reply's one statement (posts._CREATE_RESPONSE) on a forum
holding data, measured inside PostgreSQL, without HTTP or the server.

    .venv/bin/python -m bench.reply_cost --posts 200000 --replies 20      # EXPLAIN ANALYZE of 20 real replies
    .venv/bin/python -m bench.reply_cost --keep                           # keep the database (prints its URL)
    .venv/bin/python -m bench.reply_cost --url postgresql://…/db          # a database kept before (no fill)
    .venv/bin/python -m bench.reply_cost --url … --connections 16         # 16 connections at once: CPU per reply

A fresh database at the head migration is filled by set-based SQL: users, threads of 50 posts in 4 categories,
a third of the threads tagged, follows and read marks of the posters, notifications, revisions and events as the
server stores them. Then, on the `--hot` busiest threads in turn, by users in turn:

- `--replies` replies each run as `EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON)` of the statement with real
  parameters (a body, its html, no mention, the writer's draft key) and committed, as the server commits it: the
  execution time, each CTE's own time (its plan nodes' exclusive times; index maintenance and BEFORE triggers are
  inside the INSERT or UPDATE node that caused them), each trigger's time, the WAL it wrote;
- `--cpu-replies` replies run plainly (a prepared statement, autocommit, as the server's pool runs it), with the
  backend's CPU time (psutil, user + system) before and after: PostgreSQL CPU per reply, commit included;
- pg_stat_user_tables counters over those plain replies: rows inserted, updated (HOT or not), deleted per table.

Prints medians over the replies and writes bench/results/reply-cost-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections import defaultdict
from typing import Any

import asyncpg
import psutil

from bench import common
from server.store import notifications, posts

FILL = """
INSERT INTO users (username, display_name, password_hash)
SELECT 'user' || g, 'User ' || g, 'x' FROM generate_series(1, $1) g;
INSERT INTO categories (slug, name) SELECT 'cat' || g, 'Category ' || g FROM generate_series(1, 4) g;
INSERT INTO tags (name) SELECT 'tag' || g FROM generate_series(1, 50) g;
INSERT INTO threads (category_id, author_id, title, response_count, seq, created_at, last_activity_at, tags)
SELECT (SELECT min(id) FROM categories) + g % 4, 1 + g % $1, 'Thread number ' || g || ' about bread and weather', 49,
       50, now() - (g || ' minutes')::interval, now() - (g || ' seconds')::interval,
       CASE WHEN g % 3 = 0 THEN ARRAY['tag' || (1 + g % 50), 'tag' || (1 + (g / 7) % 50)]::text[]
            ELSE '{}' END
FROM generate_series(1, $2) g;
UPDATE threads SET tags = ARRAY[tags[1]] WHERE tags[1] = tags[2];
INSERT INTO thread_tags (tag_id, thread_id, last_activity_at, created_at, score, response_count)
SELECT g.id, t.id, t.last_activity_at, t.created_at, t.score, t.response_count
FROM threads t CROSS JOIN unnest(t.tags) n JOIN tags g ON g.name = n;
INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, created_at, score, seq)
SELECT t.id, NULL, 'question', t.author_id, 'Why does thread ' || t.id || ' exist? Some words on bread and weather.',
       '<p>Why does thread ' || t.id || ' exist? Some words on bread and weather.</p>', t.created_at, 0, 1
FROM threads t;
INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, created_at, score, seq)
SELECT q.thread_id, q.id, 'response', 1 + (q.thread_id * 7 + r) % $1,
       'A response number ' || r || ' with a few ordinary words about cooking bread and weather',
       '<p>A response number ' || r || ' with a few ordinary words about cooking bread and weather</p>',
       q.created_at + (r || ' seconds')::interval, r % 5 - 1, r + 1
FROM posts q, generate_series(1, 49) r WHERE q.kind = 'question';
INSERT INTO post_revisions (post_id, revision, body, html, editor_id, edited_at)
SELECT id, 1, body, html, author_id, created_at FROM posts;
INSERT INTO thread_events (thread_id, seq, name, data, post_id, revision)
SELECT p.thread_id, p.seq, 'post.created', jsonb_build_object('id', p.id, 'thread_id', p.thread_id, 'kind', p.kind,
       'revision', 1, 'score', p.score, 'deleted', false), p.id, 1
FROM posts p;
INSERT INTO thread_follows (user_id, thread_id, following)
SELECT DISTINCT author_id, thread_id, true FROM posts;
INSERT INTO thread_reads (user_id, thread_id, seq)
SELECT author_id, thread_id, max(seq) FROM posts GROUP BY author_id, thread_id;
INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id, created_at, read, mail)
SELECT t.author_id, 'response', p.author_id, p.thread_id, p.id, p.created_at, p.id % 4 <> 0, 'skipped'
FROM posts p JOIN threads t ON t.id = p.thread_id WHERE p.kind = 'response' AND p.author_id <> t.author_id;
INSERT INTO votes (post_id, user_id, value)
SELECT p.id, 1 + (p.id % $1), 1 FROM posts p WHERE p.id % 3 = 0;
INSERT INTO sessions (id, user_id, last_seen_at)
SELECT md5(g::text), 1 + g % $1, now() - (g % 60 || ' days')::interval FROM generate_series(1, $1) g
"""


async def fill(conn: asyncpg.Connection, posts_n: int) -> None:
    threads = max(1, posts_n // 50)
    users = max(20, posts_n // 100)
    for stmt in FILL.split(";\n"):
        if stmt.strip():
            args = [a for a, n in ((users, "$1"), (threads, "$2")) if n in stmt]
            await conn.execute(stmt, *args)
    await conn.execute("VACUUM ANALYZE")


def _walk(node: dict[str, Any], cte: str, own: dict[str, float]) -> None:
    """Exclusive time of each plan node (its total × loops minus its children's), summed per top-level CTE. A CTE
    Scan's time includes running its CTE the first time it is read, which the CTE's own subplan reports too: the
    scan counts as nothing, and its time is taken off its parent, so each CTE's work is counted once, in it."""
    name = node.get("Subplan Name") or ""
    if name.startswith("CTE "):
        cte = name[4:]
    total = node.get("Actual Total Time", 0.0) * node.get("Actual Loops", 1)
    children = node.get("Plans", [])
    kids = sum(k.get("Actual Total Time", 0.0) * k.get("Actual Loops", 1) for k in children)
    if node.get("Node Type") != "CTE Scan":
        own[cte] += max(0.0, total - kids)
    for k in children:
        _walk(k, cte, own)


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for k in node.get("Plans", []):
        yield from _nodes(k)


def parse(plan_json: str) -> dict[str, Any]:
    doc = json.loads(plan_json)[0]
    own: dict[str, float] = defaultdict(float)
    _walk(doc["Plan"], "(main)", own)
    trig: dict[str, float] = defaultdict(float)
    for t in doc.get("Triggers", []):  # a foreign key's check is a trigger too: named by its constraint
        trig[t.get("Constraint Name") or t["Trigger Name"]] += t["Time"]
    plan = doc["Plan"]
    notified = next((k.get("Actual Rows", 0) for k in _nodes(plan) if k.get("Subplan Name") == "CTE n"), 0)
    return {"execution_ms": doc["Execution Time"], "planning_ms": doc["Planning Time"], "cte_ms": dict(own),
            "trigger_ms": dict(trig), "wal_bytes": plan.get("WAL Bytes", 0), "wal_records": plan.get("WAL Records", 0),
            "wal_fpi": plan.get("WAL FPI", 0), "notified": notified,
            "shared_hit": plan.get("Shared Hit Blocks", 0), "shared_dirtied": plan.get("Shared Dirtied Blocks", 0)}


def _turn(hot: list[int], writers: list[int], i: int) -> tuple[int, int]:
    """Reply i's thread and writer: the threads in turn, the writers mixed over them (as bench.writes' pool of
    connections mixes its users), so that every writer follows every thread after a while."""
    return hot[i % len(hot)], writers[(i + i // len(hot)) % len(writers)]


def _args(thread_id: int, user_id: int, i: int) -> list[Any]:
    body = f"bench:{time.time_ns()} write {i} some text"
    return [thread_id, None, "response", user_id, body, f"<p>{body}</p>", [], f"thread:{thread_id}"]


async def _stats(conn: asyncpg.Connection) -> dict[str, Any]:
    # This backend's own counters: flushed at the end of the next transaction (PostgreSQL 15), then read in a
    # transaction of their own.
    await conn.execute("SELECT pg_stat_force_next_flush()")
    rows = await conn.fetch("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables")
    return {"tables": {r["relname"]: dict(r) for r in rows}}


async def _setup_bench_threads(conn: asyncpg.Connection, threads: int, writers: int) -> tuple[list[int], list[int]]:
    """bench.writes' forum: a moderator's `threads` new threads (a question each, followed by its asker) and
    `writers` new users with nothing yet."""
    tag = f"{time.time_ns() % 10**9}"
    asker = await conn.fetchval("INSERT INTO users (username, display_name, password_hash, is_moderator)"
                                " VALUES ('asker' || $1::text, 'Asker', 'x', true) RETURNING id", tag)
    users = [r["id"] for r in await conn.fetch(
        "INSERT INTO users (username, display_name, password_hash) SELECT 'w' || $1::text || '_' || g, 'W', 'x'"
        " FROM generate_series(1, $2) g RETURNING id", tag, writers)]
    hot = []
    for i in range(threads):
        tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title) SELECT min(id), $1, $2"
                                  " FROM categories RETURNING id", asker, f"Hot thread {i}")
        await conn.fetchval(posts._CREATE_QUESTION, tid, None, "question", asker, "Benchmark question",
                            "<p>Benchmark question</p>", [], None)
        hot.append(tid)
    return hot, users


async def _counts(conn: asyncpg.Connection, stmt: Any, a: argparse.Namespace, hot: list[int], writers: list[int],
                  unread: bool) -> tuple[float, float, dict[str, Any], dict[str, Any], int]:
    """`a.cpu_replies` plain replies (and the recipients' unread counts, as server/effects.py reads them for
    fewer than 16): the backend's CPU seconds, wall seconds, table and index counters before and after."""
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    proc = psutil.Process(pid)
    before = await _stats(conn)
    c0 = sum(proc.cpu_times()[:2])
    t0 = time.perf_counter()
    notified = 0
    for i in range(a.cpu_replies):
        row = await stmt.fetchrow(*_args(*_turn(hot, writers, i), i))
        notified += len(row["n_user"])
        if unread and 0 < len(row["n_user"]) < 16:
            await notifications.unread_counts(conn, sorted(row["n_user"]))
    wall = time.perf_counter() - t0
    cpu = sum(proc.cpu_times()[:2]) - c0
    after = await _stats(conn)
    return cpu, wall, before, after, notified


async def measure(url: str, a: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        if a.scenario == "bench":
            hot, writers = await _setup_bench_threads(conn, a.hot, 16)
        else:
            # The fill's busiest threads (its first ones: the latest activity then), the same ones in every run.
            hot = [r["id"] for r in await conn.fetch(
                "SELECT id FROM threads WHERE title LIKE 'Thread number %' ORDER BY id LIMIT $1", a.hot)]
            writers = [r["id"] for r in await conn.fetch("SELECT id FROM users ORDER BY id LIMIT 16")]
        tagged = await conn.fetchval("SELECT count(*) FROM threads WHERE id = any($1::bigint[]) AND tags <> '{}'", hot)
        # The server's pool runs the statement prepared; after 5 runs PostgreSQL keeps its generic plan (checked
        # in pg_prepared_statements: 25 generic of 30). EXPLAIN runs that same generic plan.
        stmt = await conn.prepare(posts._CREATE_RESPONSE)
        types = [t.name for t in stmt.get_parameters()]
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE reply({', '.join(types)}) AS {posts._CREATE_RESPONSE}")
        runs = []
        for i in range(a.warm + a.replies):
            args = _args(*_turn(hot, writers, i), i)
            plan = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) EXECUTE reply("
                                       + ", ".join(_literal(v, t) for v, t in zip(args, types, strict=True)) + ")")
            if i >= a.warm:
                runs.append(parse(plan))
        await conn.execute("RESET plan_cache_mode")
        cpu, wall, before, after, notified = await _counts(conn, stmt, a, hot, writers, False)
        cpu_u = wall_u = None
        if a.unread:
            cpu_u, wall_u, *_ = await _counts(conn, stmt, a, hot, writers, True)
        plans = await conn.fetchrow("SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                                    " WHERE statement = $1", posts._CREATE_RESPONSE)
    finally:
        await conn.close()
    n = a.cpu_replies
    tables = {}
    for name, row in after["tables"].items():
        b = before["tables"].get(name, {})
        d = {k: row[k] - b.get(k, 0) for k in ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del")}
        if any(d.values()):
            tables[name] = {k: round(v / n, 2) for k, v in d.items()}

    def med(f: Any) -> float:
        return round(statistics.median(f(r) for r in runs), 4)
    ctes = sorted({k for r in runs for k in r["cte_ms"]})
    trigs = sorted({k for r in runs for k in r["trigger_ms"]})
    return {"scenario": a.scenario, "hot_threads": len(hot), "tagged_hot_threads": tagged, "replies": len(runs),
            "execution_ms": med(lambda r: r["execution_ms"]), "planning_ms": med(lambda r: r["planning_ms"]),
            "execution_ms_all": [round(r["execution_ms"], 3) for r in runs],
            "notified_per_reply_explained": med(lambda r: r["notified"]),
            "cte_ms": {k: med(lambda r, k=k: r["cte_ms"].get(k, 0.0)) for k in ctes},
            "trigger_ms": {k: med(lambda r, k=k: r["trigger_ms"].get(k, 0.0)) for k in trigs},
            "wal_bytes": med(lambda r: r["wal_bytes"]), "wal_records": med(lambda r: r["wal_records"]),
            "wal_fpi": med(lambda r: r["wal_fpi"]), "shared_dirtied": med(lambda r: r["shared_dirtied"]),
            "shared_hit": med(lambda r: r["shared_hit"]),
            "cpu_replies": n, "notified_per_reply": round(notified / n, 1),
            "us_pg_cpu_per_reply": round(cpu / n * 1e6), "us_wall_per_reply": round(wall / n * 1e6),
            "us_pg_cpu_per_reply_with_unread": round(cpu_u / n * 1e6) if cpu_u is not None else None,
            "us_wall_per_reply_with_unread": round(wall_u / n * 1e6) if wall_u is not None else None,
            "plans": dict(plans) if plans else None,
            "per_reply_tables": tables}


async def concurrent(url: str, a: argparse.Namespace) -> dict[str, Any]:
    """`a.connections` connections replying at once for `a.seconds` on bench.writes' forum (8 new threads, 16 new
    writers who all follow every thread after the warm-up), each reply to a random thread by a random writer, as
    the server's pool runs them: PostgreSQL CPU per reply with row-lock waits on the threads, the foreign keys'
    row locks taken by concurrent transactions and the contention on shared pages."""
    setup = await asyncpg.connect(url)
    try:
        hot, writers = await _setup_bench_threads(setup, a.hot, 16)
        warm = await setup.prepare(posts._CREATE_RESPONSE)
        for i in range(a.warm):
            await warm.fetchrow(*_args(*_turn(hot, writers, i), i))
    finally:
        await setup.close()
    conns = [await asyncpg.connect(url) for _ in range(a.connections)]
    try:
        procs = [psutil.Process(await c.fetchval("SELECT pg_backend_pid()")) for c in conns]
        stmts = [await c.prepare(posts._CREATE_RESPONSE) for c in conns]
        for k, st in enumerate(stmts):  # past the 5 custom plans: the generic plan, as a warm pool runs it
            for i in range(6):
                await st.fetchrow(*_args(*_turn(hot, writers, k + i), i))
        done = 0
        c0 = sum(sum(p.cpu_times()[:2]) for p in procs)
        t0 = time.perf_counter()
        stop = t0 + a.seconds

        async def worker(k: int) -> None:
            nonlocal done
            rnd = random.Random(k)
            while time.perf_counter() < stop:
                await stmts[k].fetchrow(*_args(rnd.choice(hot), rnd.choice(writers), done))
                done += 1
        await asyncio.gather(*(worker(k) for k in range(len(conns))))
        elapsed = time.perf_counter() - t0
        cpu = sum(sum(p.cpu_times()[:2]) for p in procs) - c0
    finally:
        for c in conns:
            await c.close()
    return {"scenario": "concurrent", "connections": a.connections, "replies": done, "per_s": round(done / elapsed),
            "us_pg_cpu_per_reply": round(cpu / done * 1e6)}


def _literal(v: Any, t: str) -> str:
    """A parameter as an SQL literal (EXECUTE's arguments in EXPLAIN take no protocol parameters)."""
    if v is None:
        return f"NULL::{t}"
    if isinstance(v, list):
        return "ARRAY[" + ",".join(str(int(x)) for x in v) + f"]::{t}"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def report(r: dict[str, Any]) -> None:
    print(f"{r['scenario']}: {r['replies']} replies on {r['hot_threads']} threads ({r['tagged_hot_threads']} tagged),"
          f" {r['notified_per_reply_explained']} notified each: execution {r['execution_ms']} ms median (generic plan,"
          f" planning {r['planning_ms']} ms); WAL {r['wal_bytes']} B in {r['wal_records']} records"
          f" ({r['wal_fpi']} FPI), {r['shared_hit']} buffer hits, {r['shared_dirtied']} dirtied")
    total = r["execution_ms"]
    for k, v in sorted(r["cte_ms"].items(), key=lambda kv: -kv[1]):
        print(f"  CTE {k:34} {v:8.3f} ms  {100 * v / total:5.1f} %")
    for k, v in sorted(r["trigger_ms"].items(), key=lambda kv: -kv[1]):
        if v:
            print(f"  trigger {k:30} {v:8.3f} ms  {100 * v / total:5.1f} %")
    print(f"plain: {r['cpu_replies']} replies ({r['notified_per_reply']} notified each), PG backend CPU "
          f"{r['us_pg_cpu_per_reply']} µs/reply, wall {r['us_wall_per_reply']} µs/reply; plans {r['plans']}")
    if r["us_pg_cpu_per_reply_with_unread"] is not None:
        print(f"  with the unread counts: CPU {r['us_pg_cpu_per_reply_with_unread']} µs/reply, "
              f"wall {r['us_wall_per_reply_with_unread']} µs/reply")
    for k, v in r["per_reply_tables"].items():
        print(f"  table {k:26} per reply {v}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=200_000)
    p.add_argument("--hot", type=int, default=8, help="threads the replies go to, in turn")
    p.add_argument("--replies", type=int, default=20, help="replies run under EXPLAIN ANALYZE (after --warm)")
    p.add_argument("--warm", type=int, default=10)
    p.add_argument("--cpu-replies", type=int, default=500, help="plain replies for the CPU and counters")
    p.add_argument("--scenario", choices=("forum", "bench"), default="forum",
                   help="forum: the fill's first (busiest) threads, 16 of its users (40-50 followers a thread); bench: "
                        "bench.writes' forum, 8 new threads and 16 new users, in the same database")
    p.add_argument("--unread", action="store_true",
                   help="also the plain replies followed by their recipients' unread counts (as server/effects.py)")
    p.add_argument("--connections", type=int, default=0,
                   help="instead: this many connections replying at once on bench.writes' forum for --seconds")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--url", help="a database filled before (kept with --keep): no new database, no fill")
    p.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    a = p.parse_args()
    url = a.url or common.create_db()
    try:
        if not a.url:
            async def go() -> None:
                conn = await asyncpg.connect(url, command_timeout=3600)
                try:
                    t = time.perf_counter()
                    await fill(conn, a.posts)
                    print(f"filled {await conn.fetchval('SELECT count(*) FROM posts')} posts in "
                          f"{time.perf_counter() - t:.1f} s")
                finally:
                    await conn.close()
            asyncio.run(go())
        if a.connections:
            result = asyncio.run(concurrent(url, a))
            print(f"{result['connections']} connections: {result['replies']} replies ({result['per_s']}/s), "
                  f"PG backend CPU {result['us_pg_cpu_per_reply']} µs/reply")
        else:
            result = asyncio.run(measure(url, a))
            report(result)
        result["machine"] = common.machine()
        print(f"→ {common.write_result('reply-cost', result).relative_to(common.ROOT)}")
    finally:
        if a.keep or a.url:
            print(f"database kept: {url}")
        else:
            common.drop_db(url)


if __name__ == "__main__":
    main()
