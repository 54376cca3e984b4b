"""Upgrade to 0017_title_trigrams on a database holding data: the unused trigram index on thread titles goes, the
threads stay, and similar questions (which still use pg_trgm's similarity()) answer as before."""

from __future__ import annotations

import asyncio

from server import migrations
from server.store import similar
from support import olddata

MINE = next(m.version for m in migrations.available() if m.name == "title_trigrams")


async def _upgrade(url: str) -> None:
    async with olddata.at_version(url, MINE - 1) as conn:
        assert await conn.fetchval("SELECT to_regclass('threads_title_trgm') IS NOT NULL")
        user = (await olddata.add_users(conn, "ask"))["ask"]
        cat = await olddata.add_category(conn)
        for title in ("How do I bake sourdough bread", "Sourdough bread starter dies", "Tuning a bicycle chain"):
            await olddata.add_post(conn, await olddata.add_thread(conn, cat, user, title), "question", user, title, 1)
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        assert await conn.fetchval("SELECT to_regclass('threads_title_trgm') IS NULL")
        assert await conn.fetchval("SELECT count(*) FROM threads") == 3
        rows = await conn.fetch(similar.SIMILAR_SQL, "sourdough bread", ["sourdough", "bread"])
        titles = [await conn.fetchval("SELECT title FROM threads WHERE id = $1", r["id"]) for r in rows]
        assert set(titles) == {"How do I bake sourdough bread", "Sourdough bread starter dies"}


def test_upgrade_drops_the_title_trigram_index_and_keeps_similar_questions(empty_db):
    """A forum at 0016 upgrades to 0017: the trigram index is gone, its threads stay, similar questions still rank."""
    asyncio.run(_upgrade(empty_db))
