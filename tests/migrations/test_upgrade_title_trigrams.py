"""Upgrade to 0017_title_trigrams on a database holding data: the unused trigram index on thread titles goes, the
threads stay, and similar questions (which still use pg_trgm's similarity()) answer as before."""

from __future__ import annotations

import asyncio

import asyncpg

from server import migrations
from server.store import similar

MINE = next(m.version for m in migrations.available() if m.name == "title_trigrams")


async def _upgrade(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, target=MINE - 1)
        assert await conn.fetchval("SELECT to_regclass('threads_title_trgm') IS NOT NULL")
        user = await conn.fetchval("INSERT INTO users (username, display_name, password_hash)"
                                   " VALUES ('ask', 'Ask', 'x') RETURNING id")
        cat = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('old', 'Old') RETURNING id")
        for title in ("How do I bake sourdough bread", "Sourdough bread starter dies", "Tuning a bicycle chain"):
            tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title, seq) VALUES ($1, $2, $3, 1)"
                                      " RETURNING id", cat, user, title)
            await conn.execute("INSERT INTO posts (thread_id, kind, author_id, body, html, seq)"
                               " VALUES ($1, 'question', $2, $3, $3, 1)", tid, user, title)
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        assert await conn.fetchval("SELECT to_regclass('threads_title_trgm') IS NULL")
        assert await conn.fetchval("SELECT count(*) FROM threads") == 3
        rows = await conn.fetch(similar.SIMILAR_SQL, "sourdough bread", ["sourdough", "bread"])
        titles = [await conn.fetchval("SELECT title FROM threads WHERE id = $1", r["id"]) for r in rows]
        assert set(titles) == {"How do I bake sourdough bread", "Sourdough bread starter dies"}
    finally:
        await conn.close()


def test_upgrade_drops_the_title_trigram_index_and_keeps_similar_questions(empty_db):
    """A forum at 0016 upgrades to 0017: the trigram index is gone, its threads stay, similar questions still rank."""
    asyncio.run(_upgrade(empty_db))
