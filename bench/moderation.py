"""The review queue at size: N open flags (on N posts by N members), then GET /api/flags pages timed
through a real `parley serve` as a moderator, first page and a deep page, and the modlog likewise.

    .venv/bin/python -m bench.moderation --flags 10000 --requests 200
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import asyncpg
import httpx

from bench import common

FILL = """
INSERT INTO users (username, display_name, password_hash)
SELECT 'flagger' || g, 'Flagger ' || g, 'x' FROM generate_series(1, $1) g;
INSERT INTO categories (slug, name) VALUES ('flagged', 'Flagged');
INSERT INTO threads (category_id, author_id, title, seq)
SELECT (SELECT id FROM categories WHERE slug = 'flagged'), (SELECT min(id) FROM users), 'Thread ' || g, 1
FROM generate_series(1, $1 / 10) g;
INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html)
SELECT t.id, NULL, 'response', (SELECT min(id) FROM users), 'post ' || g, '<p>post ' || g || '</p>'
FROM generate_series(1, $1) g JOIN threads t ON t.id = (SELECT min(id) FROM threads) + (g % ($1 / 10));
INSERT INTO flags (post_id, thread_id, flagger_id, reason, note)
SELECT p.id, p.thread_id, u.id, 'spam', 'looks like spam'
FROM (SELECT id, thread_id, row_number() OVER (ORDER BY id) AS n FROM posts) p
JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) u ON u.n = p.n;
INSERT INTO modlog (action, moderator_id, thread_id, post_id)
SELECT 'flag.dismissed', (SELECT min(id) FROM users), thread_id, post_id FROM flags;
ANALYZE;
"""


def timed(client: httpx.Client, path: str, n: int) -> dict[str, Any]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return common.summary_ms(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--flags", type=int, default=10_000)
    p.add_argument("--requests", type=int, default=200)
    a = p.parse_args()
    url = common.create_db()

    async def fill() -> None:
        conn = await asyncpg.connect(url)
        try:
            for stmt in FILL.split(";\n"):
                if stmt.strip():
                    await conn.execute(stmt, *([a.flags] if "$1" in stmt else []))
        finally:
            await conn.close()
    try:
        asyncio.run(fill())
        proc = common.parley_proc(url).start()
        try:
            base = f"http://127.0.0.1:{proc.port}"
            cookie, mod = asyncio.run(common.make_user(proc.port))
            asyncio.run(common.db_fetch(url, "UPDATE users SET is_moderator = true WHERE id = $1", mod["id"]))
            client = httpx.Client(base_url=base, cookies={"parley_session": cookie}, timeout=30)
            first = client.get("/api/flags?limit=50").json()
            assert first["open"] == a.flags, first["open"]
            cursor = first["next"]
            for _ in range(50):  # a deep page: 2,500 flags in
                cursor = client.get(f"/api/flags?limit=50&before={cursor}").json()["next"]
            result = {
                "flags": a.flags,
                "flags_first_page_ms": timed(client, "/api/flags?limit=50", a.requests),
                "flags_deep_page_ms": timed(client, f"/api/flags?limit=50&before={cursor}", a.requests),
                "modlog_first_page_ms": timed(client, "/api/modlog?limit=50", a.requests),
            }
        finally:
            proc.stop()
    finally:
        common.drop_db(url)
    for k, v in result.items():
        print(f"{k}: {v}")
    print(f"→ {common.write_result('moderation', result).relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
