"""How long `parley migrate` takes on a big forum: a database at a given version filled with
N posts (threads of 50 posts, votes, revisions, events, sessions) by set-based SQL, then every
later migration timed one by one (each its own transaction, as `parley migrate` runs them).

    .venv/bin/python -m bench.migrate_big --posts 1000000 --from-version 1

Prints one line per migration and the total; writes bench/results/migrate-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg

from bench import common
from server import migrations

FILL = """
INSERT INTO users (username, display_name, password_hash)
SELECT 'user' || g, 'User ' || g, 'x' FROM generate_series(1, $1) g;
INSERT INTO categories (slug, name) VALUES ('big', 'Big');
INSERT INTO threads (category_id, author_id, title, response_count, seq, created_at, last_activity_at)
SELECT (SELECT id FROM categories WHERE slug = 'big'), 1 + g % $1, 'Thread number ' || g, 49, 50,
       now() - (g || ' minutes')::interval, now() - (g || ' seconds')::interval
FROM generate_series(1, $2) g;
INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, created_at, score)
SELECT t.id, NULL, 'question', t.author_id, 'Why does thread ' || t.id || ' exist?',
       '<p>Why does thread ' || t.id || ' exist?</p>', t.created_at, 0 FROM threads t;
INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, created_at, score)
SELECT q.thread_id, q.id, 'response', 1 + (q.thread_id * 7 + r) % $1,
       'A response number ' || r || ' with a few ordinary words about cooking bread and weather',
       '<p>A response number ' || r || ' with a few ordinary words about cooking bread and weather</p>',
       q.created_at + (r || ' seconds')::interval, r % 5 - 1
FROM posts q, generate_series(1, 49) r WHERE q.kind = 'question';
INSERT INTO post_revisions (post_id, revision, body, html, editor_id, edited_at)
SELECT id, 1, body, html, author_id, created_at FROM posts;
INSERT INTO votes (post_id, user_id, value)
SELECT p.id, 1 + (p.id % $1), 1 FROM posts p WHERE p.id % 3 = 0;
INSERT INTO thread_events (thread_id, seq, name, data)
SELECT p.thread_id, row_number() OVER (PARTITION BY p.thread_id ORDER BY p.id), 'post.created',
       jsonb_build_object('id', p.id, 'revision', 1, 'body', p.body, 'html', p.html)
FROM posts p;
INSERT INTO sessions (id, user_id, last_seen_at)
SELECT md5(g::text), 1 + g % $1, now() - (g % 60 || ' days')::interval FROM generate_series(1, $1) g;
"""


async def run(url: str, posts: int, start: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url, command_timeout=3600)
    try:
        await migrations.migrate(conn, target=start)
        threads = max(1, posts // 50)
        users = max(10, posts // 100)
        t0 = time.perf_counter()
        for stmt in FILL.split(";\n"):
            if stmt.strip():
                args = [a for a, n in ((users, "$1"), (threads, "$2")) if n in stmt]
                await conn.execute(stmt, *args)
        await conn.execute("ANALYZE")
        fill_s = time.perf_counter() - t0
        count = await conn.fetchval("SELECT count(*) FROM posts")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"filled {count} posts in {threads} threads ({size}) in {fill_s:.1f} s")
        steps = []
        total = 0.0
        for m in migrations.available()[start:]:
            t = time.perf_counter()
            await migrations.migrate(conn, target=m.version)
            took = time.perf_counter() - t
            total += took
            steps.append({"version": m.version, "name": m.name, "seconds": round(took, 2)})
            print(f"  {m.version:04d}_{m.name}: {took:.2f} s")
        print(f"migrate {start} -> {migrations.head()}: {total:.2f} s")
        return {"posts": count, "db_size": size, "fill_seconds": round(fill_s, 1), "steps": steps,
                "total_seconds": round(total, 2)}
    finally:
        await conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=1_000_000)
    p.add_argument("--from-version", type=int, default=1)
    a = p.parse_args()
    url = common.create_db_empty()
    try:
        result = asyncio.run(run(url, a.posts, a.from_version))
    finally:
        common.drop_db(url)
    print(f"→ {common.write_result('migrate', result).relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
