"""Upgrade to the tags migration on a database holding data: threads get no tags and no duplicate mark, old
notifications keep their kinds, and the new tables, counters and indexes work at once."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from server import migrations
from support import olddata

MINE = next(m.version for m in migrations.available() if m.name == "tags")


async def _fill_before(url: str) -> dict[str, Any]:
    """At the version before: ada asks, bob answers (ada has a `response` notification)."""
    async with olddata.at_version(url, MINE - 1) as conn:
        ids = await olddata.add_users(conn, "ada", "bob")
        tid, q, r = await olddata.asked_and_answered(conn, ids["ada"], ids["bob"], "How do I boil an egg")
        await conn.execute("INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id)"
                           " VALUES ($1, 'response', $2, $3, $4)", ids["ada"], ids["bob"], tid, r)
        return {"users": ids, "thread": tid, "question": q}


async def _upgrade(url: str, before: dict[str, Any]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        tid, ada = before["thread"], before["users"]["ada"]
        out: dict[str, Any] = {"thread": dict(await conn.fetchrow(
            "SELECT title, tags, duplicate_of, response_count FROM threads WHERE id = $1", tid))}
        out["kinds"] = [r["kind"] for r in await conn.fetch("SELECT kind FROM notifications")]
        # A tag on the old thread: counted, its list keys copied, kept in step, gone with the thread.
        tag = await conn.fetchval("INSERT INTO tags (name, created_by) VALUES ('eggs', $1) RETURNING id", ada)
        await conn.execute("UPDATE threads SET tags = '{eggs}' WHERE id = $1", tid)
        await conn.execute("INSERT INTO thread_tags (tag_id, thread_id, last_activity_at, created_at, score,"
                           " response_count) SELECT $1, id, last_activity_at, created_at, score, response_count"
                           " FROM threads WHERE id = $2", tag, tid)
        out["count"] = await conn.fetchval("SELECT count FROM tags WHERE id = $1", tag)
        await conn.execute("UPDATE threads SET last_activity_at = '2030-01-01Z', response_count = 2 WHERE id = $1",
                           tid)
        out["keys"] = dict(await conn.fetchrow("SELECT last_activity_at, response_count FROM thread_tags"
                                               " WHERE thread_id = $1", tid))
        await conn.execute("INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id)"
                           " VALUES ($1, 'tagged', $2, $3, $4)", before["users"]["bob"], ada, tid, before["question"])
        out["similar"] = await conn.fetchval("SELECT count(*) FROM threads WHERE title % 'how to boil eggs'")
        await conn.execute("UPDATE threads SET deleted = true WHERE id = $1", tid)
        out["count_after_delete"] = await conn.fetchval("SELECT count FROM tags WHERE id = $1", tag)
        out["rows_after_delete"] = await conn.fetchval("SELECT count(*) FROM thread_tags")
        return out
    finally:
        await conn.close()


def test_upgrade_adds_tags_duplicates_and_bookmarks_keeping_the_data(empty_db: str) -> None:
    """Old threads carry no tags and are no duplicates; old notifications keep their kind and `tagged` is a kind;
    a tag's count follows its live threads and its rows carry the thread's list keys; titles match by trigrams."""
    before = asyncio.run(_fill_before(empty_db))
    after = asyncio.run(_upgrade(empty_db, before))
    assert after["thread"] == {"title": "How do I boil an egg", "tags": [], "duplicate_of": None, "response_count": 1}
    assert after["kinds"] == ["response"]
    assert after["count"] == 1
    assert after["keys"]["response_count"] == 2 and after["keys"]["last_activity_at"].year == 2030
    assert after["similar"] == 1
    assert after["count_after_delete"] == 0 and after["rows_after_delete"] == 0
