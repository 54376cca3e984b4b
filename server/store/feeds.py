"""What the Atom feeds list (server/api/feeds.py): the newest threads with their questions, a thread's newest posts."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..wire import iso
from . import categories, posts, threads, users

NEWEST_THREADS = f"""
SELECT t.id, t.title, t.category_id, t.created_at, q.edited_at, q.html, {users.brief_columns("u", "author_")}
FROM threads t JOIN users u ON u.id = t.author_id JOIN posts q ON q.thread_id = t.id AND q.kind = 'question'
WHERE NOT t.deleted AND NOT t.held {{where}}
ORDER BY t.created_at DESC, t.id DESC LIMIT $1
"""


async def newest_threads(conn: asyncpg.Connection | asyncpg.Pool, limit: int,
                         category_ids: list[int] | None) -> tuple[list[dict[str, Any]], categories.Tree]:
    """The newest live threads (of these categories, when given), each with its question's html (empty when the
    question was deleted) and its author, newest created first (index threads_newest / threads_category_newest)."""
    if category_ids is None:
        rows = await conn.fetch(NEWEST_THREADS.format(where=""), limit)
    else:
        rows = await conn.fetch(NEWEST_THREADS.format(where="AND t.category_id = any($2::bigint[])"), limit,
                                category_ids)
    tree = await categories.tree(conn)
    return [_thread(r, tree) for r in rows], tree


async def newest_tagged(conn: asyncpg.Connection | asyncpg.Pool, limit: int,
                        tag: str) -> list[dict[str, Any]] | None:
    """The newest live threads carrying the tag (as newest_threads); None when no tag has that name."""
    if await conn.fetchval("SELECT 1 FROM tags WHERE name = $1", tag) is None:
        return None
    rows = await conn.fetch(NEWEST_THREADS.format(where="""AND t.id IN (SELECT tt.thread_id FROM thread_tags tt
        JOIN tags g ON g.id = tt.tag_id WHERE g.name = $2)"""), limit, tag)
    tree = await categories.tree(conn)
    return [_thread(r, tree) for r in rows]


def _thread(r: asyncpg.Record, tree: categories.Tree) -> dict[str, Any]:
    return {"id": r["id"], "title": r["title"], "category": tree.brief(r["category_id"]), "html": r["html"],
            "created_at": iso(r["created_at"]), "updated_at": iso(r["edited_at"] or r["created_at"]),
            "author": users.brief(r, "author_")}


async def thread_posts(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int,
                       limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A live thread and its newest non-deleted posts, newest first (index posts_thread, read backwards)."""
    thread = await threads.get(conn, thread_id)  # NotFound when deleted or unknown
    rows = await conn.fetch(posts.POST_SELECT + f" WHERE p.thread_id = $1 AND NOT p.deleted AND NOT {posts.HIDDEN}"
                            " ORDER BY p.id DESC LIMIT $2", thread_id, limit)
    return thread, [posts.post_dict(r) for r in rows]
