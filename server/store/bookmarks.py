"""Bookmarks: a user's saved posts (CONTRACT rev. 3 "Bookmarks"), listed newest bookmark first on their own page."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import NotFound
from . import posts, threads


async def set_bookmark(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, post_id: int, on: bool) -> bool:
    """Bookmark a post or take the bookmark off; a deleted post (or one in a deleted thread) cannot be
    bookmarked (404), and taking one off always works."""
    if not on:
        await conn.execute("DELETE FROM bookmarks WHERE user_id = $1 AND post_id = $2", user_id, post_id)
        return False
    live = await conn.fetchval("SELECT 1 FROM posts p JOIN threads t ON t.id = p.thread_id"
                               " WHERE p.id = $1 AND NOT p.deleted AND NOT t.deleted", post_id)
    if live is None:
        raise NotFound(f"No post {post_id}")
    await conn.execute("INSERT INTO bookmarks (user_id, post_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       user_id, post_id)
    return True


def listing_sql(keyset: bool) -> str:
    """A page of a user's bookmarked live posts: $1 user, $2 limit, $3/$4 the cursor (time, post id)."""
    return ("SELECT b.created_at AS bookmarked_at, q.* FROM bookmarks b"
            " CROSS JOIN LATERAL (" + posts.POST_SELECT + " WHERE p.id = b.post_id) q"
            " JOIN threads t ON t.id = q.thread_id"
            " WHERE b.user_id = $1 AND NOT q.deleted AND NOT t.deleted"
            + (" AND (b.created_at, b.post_id) < ($3::timestamptz, $4::bigint)" if keyset else "")
            + " ORDER BY b.created_at DESC, b.post_id DESC LIMIT $2")


async def listing(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, limit: int,
                  before: str | None) -> dict[str, Any]:
    """{posts: [Post + {thread: {id, title}}…], next}: the user's bookmarks, newest first."""
    args: list[Any] = [user_id, limit + 1]
    if before is not None:
        value, pid = threads.cursor_decode(before, "before", (int, int))
        args += [threads.from_micros(value, "before"), pid]
    rows = await conn.fetch(listing_sql(before is not None), *args)
    more = len(rows) > limit
    rows = rows[:limit]
    titles = {r["id"]: r["title"] for r in await conn.fetch(
        "SELECT id, title FROM threads WHERE id = any($1::bigint[])", list({r["thread_id"] for r in rows}))}
    votes = await posts.my_votes(conn, user_id, [r["id"] for r in rows])
    out = []
    for r in rows:
        post = posts.post_dict(r, votes.get(r["id"], 0))
        post["thread"] = {"id": r["thread_id"], "title": titles[r["thread_id"]]}
        out.append(post)
    nxt = threads.cursor_encode(threads.micros(rows[-1]["bookmarked_at"]), rows[-1]["id"]) if more else None
    return {"posts": out, "next": nxt}
