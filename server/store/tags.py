"""Tags on questions (CONTRACT rev. 3 "Tags, duplicates, bookmarks"; migration 0012_tags).

A thread's tags are kept twice, in its transaction: `threads.tags` (the names in the order given, what a Thread
shows) and `thread_tags` (one row per tag, with the thread's list keys copied by a trigger, so a tag's list walks
one index in every sort). `tags.count` (live threads carrying it) is kept by a trigger on thread_tags; a deleted
thread's rows are deleted by a trigger on threads.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import Forbidden, NotFound
from . import notifications

LIST_DEFAULT, LIST_MAX = 20, 100


async def ids_of(conn: asyncpg.Connection | asyncpg.Pool, names: list[str]) -> dict[str, int]:
    rows = await conn.fetch("SELECT id, name FROM tags WHERE name = any($1::text[])", names)
    return {r["name"]: r["id"] for r in rows}


async def id_of(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> int | None:
    return await conn.fetchval("SELECT id FROM tags WHERE name = $1", name)  # type: ignore[no-any-return]


async def set_tags(conn: asyncpg.Connection, thread_id: int, names: list[str], user_id: int,
                   may_create: bool) -> list[str] | None:
    """Give the thread exactly these tags (normalised names, in order). A name never used before is created only
    when `may_create` (else 403 code `privilege`). Answers None when the tags did not change, else the names the
    thread did not carry before (empty when tags were only removed or reordered). Inside the caller's
    transaction, with the thread's row locked by it."""
    current = list(await conn.fetchval("SELECT tags FROM threads WHERE id = $1", thread_id))
    if current == names:
        return None
    known = await ids_of(conn, names)
    missing = [n for n in names if n not in known]
    if missing:
        if not may_create:
            raise Forbidden(f"You need the create_tag privilege to make the new tag {missing[0]!r}", code="privilege")
        await conn.execute("INSERT INTO tags (name, created_by) SELECT unnest($1::text[]), $2"
                           " ON CONFLICT (name) DO NOTHING", missing, user_id)
        known = await ids_of(conn, names)
    await conn.execute("UPDATE threads SET tags = $2 WHERE id = $1", thread_id, names)
    wanted = [known[n] for n in names]
    await conn.execute("DELETE FROM thread_tags WHERE thread_id = $1 AND NOT tag_id = any($2::bigint[])",
                       thread_id, wanted)
    await conn.execute(
        "INSERT INTO thread_tags (tag_id, thread_id, last_activity_at, created_at, score, response_count)"
        " SELECT x, t.id, t.last_activity_at, t.created_at, t.score, t.response_count"
        " FROM threads t, unnest($2::bigint[]) AS x WHERE t.id = $1 AND NOT t.deleted"
        " ON CONFLICT (thread_id, tag_id) DO NOTHING", thread_id, wanted)
    return [n for n in names if n not in current]


async def notify_followers(conn: asyncpg.Connection, actor: dict[str, Any], thread_id: int, title: str,
                           post_id: int, names: list[str]) -> list[dict[str, Any]]:
    """A question's `tagged` notifications, when it is asked with `names` or retagged with them: every follower of
    one of those tags but the asker and those who ignore the asker, once per question (a user already notified of
    it, by a mention or an earlier tag, keeps that one). `actor` is the asker, whoever tagged it."""
    if not names:
        return []
    rows = await conn.fetch(
        "INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id)"
        " SELECT DISTINCT f.user_id, 'tagged', $1::bigint, $2::bigint, $3::bigint FROM tag_follows f"
        " JOIN tags g ON g.id = f.tag_id WHERE g.name = any($4::text[]) AND f.user_id <> $1"
        " AND NOT EXISTS (SELECT 1 FROM user_ignores i WHERE i.user_id = f.user_id AND i.ignored_id = $1)"
        " ON CONFLICT (post_id, user_id) DO NOTHING RETURNING id, user_id, kind, created_at",
        actor["id"], thread_id, post_id, names)
    return notifications.published(list(rows), actor, {"id": thread_id, "title": title}, post_id) if rows else []


async def listing(conn: asyncpg.Connection | asyncpg.Pool, prefix: str | None, limit: int) -> list[dict[str, Any]]:
    """Tags carried by at least one live thread, most used first; with `prefix`, those starting with it."""
    if prefix:
        rows = await conn.fetch("SELECT name, count FROM tags WHERE name LIKE $1 || '%' AND count > 0"
                                " ORDER BY count DESC, name LIMIT $2", prefix, limit)
    else:
        rows = await conn.fetch("SELECT name, count FROM tags WHERE count > 0 ORDER BY count DESC, name LIMIT $1",
                                limit)
    return [{"name": r["name"], "count": r["count"]} for r in rows]


async def set_following(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, name: str, follow: bool) -> bool:
    tag_id = await id_of(conn, name)
    if tag_id is None:
        raise NotFound(f"No tag {name!r}")
    if follow:
        await conn.execute("INSERT INTO tag_follows (user_id, tag_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           user_id, tag_id)
    else:
        await conn.execute("DELETE FROM tag_follows WHERE user_id = $1 AND tag_id = $2", user_id, tag_id)
    return follow


async def followed(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> list[str]:
    """The names of the tags a user follows, by name."""
    rows = await conn.fetch("SELECT g.name FROM tag_follows f JOIN tags g ON g.id = f.tag_id WHERE f.user_id = $1"
                            " ORDER BY g.name", user_id)
    return [r["name"] for r in rows]
