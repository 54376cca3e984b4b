"""Everything a user wrote and set, read in one snapshot for GET /api/me/export (CONTRACT "Leaving")."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..wire import iso
from . import addresses, apikeys, users


def _time(value: Any) -> str | None:
    return iso(value) if value is not None else None


async def export(pool: asyncpg.Pool, user_id: int) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await users.by_id(conn, user_id)
        assert row is not None  # the caller's session or key found it
        posts = await conn.fetch(
            """SELECT p.id, p.thread_id, t.title AS thread_title, p.parent_id, p.kind, p.body, p.html, p.created_at,
                      p.edited_at, p.revision, p.score, p.deleted
               FROM posts p JOIN threads t ON t.id = p.thread_id WHERE p.author_id = $1 ORDER BY p.id""", user_id)
        revisions = await conn.fetch(
            """SELECT post_id, revision, body, edited_at FROM post_revisions
               WHERE post_id = any($1::bigint[]) ORDER BY post_id, revision""", [p["id"] for p in posts])
        votes = await conn.fetch("SELECT post_id, value, created_at FROM votes WHERE user_id = $1 ORDER BY post_id",
                                 user_id)
        follows = await conn.fetch("SELECT thread_id, following, changed_at FROM thread_follows WHERE user_id = $1"
                                   " ORDER BY thread_id", user_id)
        reads = await conn.fetch("SELECT thread_id, seq, read_at FROM thread_reads WHERE user_id = $1"
                                 " ORDER BY thread_id", user_id)
        notifications = await conn.fetch(
            """SELECT id, kind, thread_id, post_id, actor_id, created_at, read FROM notifications
               WHERE user_id = $1 ORDER BY id""", user_id)
        flags = await conn.fetch("SELECT id, post_id, reason, note, status, created_at FROM flags"
                                 " WHERE flagger_id = $1 ORDER BY id", user_id)
        keys = await apikeys.listing(conn, user_id)
        bookmarks = await conn.fetch("SELECT post_id, created_at FROM bookmarks WHERE user_id = $1"
                                     " ORDER BY created_at DESC, post_id DESC", user_id)
    by_post: dict[int, list[dict[str, Any]]] = {}
    for r in revisions:
        by_post.setdefault(r["post_id"], []).append(
            {"revision": r["revision"], "body": r["body"], "edited_at": _time(r["edited_at"])})
    return {
        "user": users.full(row),
        "preferences": addresses.preferences(row),
        "posts": [{"id": p["id"], "thread": {"id": p["thread_id"], "title": p["thread_title"]},
                   "parent_id": p["parent_id"], "kind": p["kind"], "body": p["body"], "html": p["html"],
                   "created_at": _time(p["created_at"]), "edited_at": _time(p["edited_at"]),
                   "revision": p["revision"], "score": p["score"], "deleted": p["deleted"],
                   "revisions": by_post.get(p["id"], [])} for p in posts],
        "votes": [{"post_id": v["post_id"], "value": v["value"], "created_at": _time(v["created_at"])} for v in votes],
        "follows": [{"thread_id": f["thread_id"], "following": f["following"], "changed_at": _time(f["changed_at"])}
                    for f in follows],
        "read_positions": [{"thread_id": r["thread_id"], "seq": r["seq"], "read_at": _time(r["read_at"])}
                           for r in reads],
        "notifications": [{"id": n["id"], "kind": n["kind"], "thread_id": n["thread_id"], "post_id": n["post_id"],
                           "actor_id": n["actor_id"], "created_at": _time(n["created_at"]), "read": n["read"]}
                          for n in notifications],
        "flags": [{"id": f["id"], "post_id": f["post_id"], "reason": f["reason"], "note": f["note"],
                   "status": f["status"], "created_at": _time(f["created_at"])} for f in flags],
        "bookmarks": [{"post_id": b["post_id"], "created_at": _time(b["created_at"])} for b in bookmarks],
        "api_keys": keys,
    }
