"""Flags: members report posts; moderators resolve or dismiss them (docs/api.md, "Moderation").

Several flags on one post are one item of the review queue: resolving or dismissing any of them
settles every open flag of that post at once.
"""

from __future__ import annotations

from typing import Any, Literal

import asyncpg

from .. import limits
from ..errors import Conflict, Forbidden, NotFound
from ..wire import iso
from . import modlog, users
from .cursor import cursor_decode, cursor_encode

Reason = Literal["spam", "rude", "off_topic", "other"]  # what a flag may say (validated by the API)
STATUSES = ("open", "resolved", "dismissed")

FLAG_SELECT = """
SELECT f.id, f.post_id, f.thread_id, f.reason, f.note, f.status, f.created_at,
       u.id AS flagger_id, u.username AS flagger_username, u.display_name AS flagger_display_name,
       u.avatar_url AS flagger_avatar_url,
       r.id AS resolver_id, r.username AS resolver_username, r.display_name AS resolver_display_name,
       r.avatar_url AS resolver_avatar_url
FROM flags f JOIN users u ON u.id = f.flagger_id LEFT JOIN users r ON r.id = f.resolved_by
"""


def flag_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "post_id": row["post_id"], "thread_id": row["thread_id"], "reason": row["reason"],
            "note": row["note"], "status": row["status"], "created_at": iso(row["created_at"]),
            "flagger": users.brief(row, "flagger_"), "resolved_by": users.brief(row, "resolver_")}


async def create(conn: asyncpg.Connection, post_id: int, user: asyncpg.Record, reason: str,
                 note: str | None) -> dict[str, Any]:
    post = await conn.fetchrow(
        "SELECT p.author_id, p.thread_id, p.deleted, t.deleted AS thread_deleted"
        " FROM posts p JOIN threads t ON t.id = p.thread_id WHERE p.id = $1", post_id)
    if post is None or post["thread_deleted"]:
        raise NotFound(f"No post {post_id}")
    if post["author_id"] == user["id"]:
        raise Forbidden("You cannot flag your own post")
    if post["deleted"]:
        raise Conflict("This post was deleted", code="post_deleted")
    flag_id = await conn.fetchval(
        "INSERT INTO flags (post_id, thread_id, flagger_id, reason, note) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (post_id, flagger_id) DO NOTHING RETURNING id",
        post_id, post["thread_id"], user["id"], reason, note)
    if flag_id is None:
        raise Conflict("You have already flagged this post", code="already_flagged")
    return flag_dict(await conn.fetchrow(FLAG_SELECT + " WHERE f.id = $1", flag_id))


async def open_count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """Open queue items: posts with at least one open flag."""
    return await conn.fetchval("SELECT count(DISTINCT post_id) FROM flags WHERE status = 'open'")


async def listing(conn: asyncpg.Connection | asyncpg.Pool, status: str, limit: int,
                  before: str | None) -> dict[str, Any]:
    """Flags of one status, newest first, keyset by id (index flags_status)."""
    start = cursor_decode(before, "before", (int,))[0] if before else limits.BIGINT
    rows = await conn.fetch(FLAG_SELECT + " WHERE f.status = $1 AND f.id < $2 ORDER BY f.id DESC LIMIT $3",
                            status, start, limit + 1)
    flags = [flag_dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    return {"flags": flags, "next": cursor_encode(flags[-1]["id"]) if more and flags else None}


async def settle(conn: asyncpg.Connection, flag_id: int, moderator: asyncpg.Record, status: str) -> dict[str, Any]:
    """Resolve or dismiss a flag and every other open flag of the same post; one log entry."""
    row = await conn.fetchrow("SELECT post_id, thread_id, status FROM flags WHERE id = $1 FOR UPDATE", flag_id)
    if row is None:
        raise NotFound(f"No flag {flag_id}")
    if row["status"] != status:
        await conn.execute(
            "UPDATE flags SET status = $2, resolved_by = $3, resolved_at = now()"
            " WHERE post_id = $1 AND (status = 'open' OR id = $4)",
            row["post_id"], status, moderator["id"], flag_id)
        await modlog.record(conn, "flag.resolved" if status == "resolved" else "flag.dismissed", moderator["id"],
                            thread_id=row["thread_id"], post_id=row["post_id"])
    return flag_dict(await conn.fetchrow(FLAG_SELECT + " WHERE f.id = $1", flag_id))
