"""Profiles: a user with their stats, their posts newest first, and the permalink of one post."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import NotFound
from ..wire import iso
from . import categories, posts, threads, users


async def profile(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> dict[str, Any]:
    """The contract's Profile. Posts in deleted threads count as gone, like the posts themselves."""
    row = await users.by_username(conn, username)
    if row is None:
        raise NotFound(f"No user {username!r}")
    stats = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE p.kind = 'question') AS questions,
               count(*) FILTER (WHERE p.kind = 'response') AS responses,
               count(*) FILTER (WHERE p.kind = 'comment') AS comments,
               count(*) FILTER (WHERE t.accepted_id = p.id) AS accepted,
               coalesce(sum(p.score), 0)::bigint AS score,
               max(p.created_at) AS last_post_at
        FROM posts p JOIN threads t ON t.id = p.thread_id
        WHERE p.author_id = $1 AND NOT p.deleted AND NOT t.deleted
        """, row["id"])
    # Last seen: the latest use of any of their sessions (touched every few minutes), or their latest
    # post when every session has ended since.
    seen = await conn.fetchval("SELECT max(last_seen_at) FROM sessions WHERE user_id = $1", row["id"])
    candidates = [ts for ts in (seen, stats["last_post_at"]) if ts is not None]
    return {
        **users.public(row),
        "last_seen_at": iso(max(candidates)) if candidates else None,
        "suspended_until": iso(row["suspended_until"]) if users.suspended(row) else None,
        "stats": {k: stats[k] for k in ("questions", "responses", "comments", "accepted", "score")},
        "reputation": row["reputation"],
        "silenced": row["silenced_at"] is not None,
    }


def user_posts_sql(keyset: bool) -> str:
    """A page of a user's posts: $1 author, $2 limit, $3 the reader's id, $4 a moderator, $5 the last id seen
    (posts_author index); a silenced user's for moderators and themselves only."""
    return posts.POST_SELECT + f"""
        WHERE p.author_id = $1 AND NOT p.deleted {"AND p.id < $5" if keyset else ""} AND {posts.visible("$3", "$4")}
          AND EXISTS (SELECT 1 FROM threads t WHERE t.id = p.thread_id AND NOT t.deleted)
        ORDER BY p.id DESC LIMIT $2"""


async def user_posts(conn: asyncpg.Connection | asyncpg.Pool, username: str, reader_id: int | None, limit: int,
                     before: str | None, viewer: posts.Reader = posts.PUBLIC) -> dict[str, Any]:
    """Their non-deleted posts (not in deleted threads), newest first, each with its thread's {id, title}."""
    row = await users.by_username(conn, username)
    if row is None:
        raise NotFound(f"No user {username!r}")
    before_id = threads.cursor_decode(before, "before", (int,))[0] if before is not None else None
    rows = await conn.fetch(user_posts_sql(before_id is not None), row["id"], limit + 1, *viewer,
                            *([before_id] if before_id is not None else []))
    more = len(rows) > limit
    rows = rows[:limit]
    titles = {r["id"]: r["title"] for r in await conn.fetch(
        "SELECT id, title FROM threads WHERE id = any($1::bigint[])", list({r["thread_id"] for r in rows}))}
    votes = await posts.my_votes(conn, reader_id, [r["id"] for r in rows])
    out = []
    for r in rows:
        post = posts.post_dict(r, votes.get(r["id"], 0))
        post["thread"] = {"id": r["thread_id"], "title": titles[r["thread_id"]]}
        out.append(post)
    return {"posts": out, "next": threads.cursor_encode(rows[-1]["id"]) if more else None}


async def permalink(pool: asyncpg.Pool, post_id: int, reader_id: int | None,
                    viewer: posts.Reader = posts.PUBLIC) -> dict[str, Any]:
    """{post, thread, after}: `after` opens the thread page (oldest first) at the post's response. A post the
    reader may not see (posts.visible) is unknown to them (404)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await posts.get_row(conn, post_id)
        if not await conn.fetchval(f"SELECT {posts.visible('$2', '$3')} FROM posts p WHERE p.id = $1", post_id,
                                   *viewer):
            raise NotFound(f"No post {post_id}")
        thread = threads.thread_dict(await threads.get_row(conn, row["thread_id"]), await categories.tree(conn))
        votes = await posts.my_votes(conn, reader_id, [post_id])
    response_id = {"response": row["id"], "comment": row["parent_id"]}.get(row["kind"])
    return {"post": posts.post_dict(row, votes.get(post_id, 0)), "thread": thread,
            "after": threads.cursor_encode(response_id - 1) if response_id is not None else None}


async def pending_posts(conn: asyncpg.Connection | asyncpg.Pool, limit: int, before: str | None) -> dict[str, Any]:
    """The posts the spam check holds (the review queue's part of them), newest first, each with its thread."""
    before_id = threads.cursor_decode(before, "before", (int,))[0] if before is not None else None
    rows = await conn.fetch(posts.POST_SELECT + f"""
        WHERE p.pending AND NOT p.deleted {"AND p.id < $2" if before_id is not None else ""}
          AND EXISTS (SELECT 1 FROM threads t WHERE t.id = p.thread_id AND NOT t.deleted)
        ORDER BY p.id DESC LIMIT $1""", limit + 1, *([before_id] if before_id is not None else []))
    more = len(rows) > limit
    rows = rows[:limit]
    titles = {r["id"]: r["title"] for r in await conn.fetch(
        "SELECT id, title FROM threads WHERE id = any($1::bigint[])", list({r["thread_id"] for r in rows}))}
    out = [{**posts.post_dict(r), "thread": {"id": r["thread_id"], "title": titles[r["thread_id"]]}} for r in rows]
    return {"posts": out, "next": threads.cursor_encode(rows[-1]["id"]) if more else None}
