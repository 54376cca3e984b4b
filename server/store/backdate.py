"""Times for the demo forum (server/demo.py): loaded in one transaction, everything in it would say "1 minute
ago". These move a thread's posts (and what hangs off them) and a user's sign-up back in time, so the demo
reads like a forum that has lived for a few weeks. Used only on a freshly loaded demo."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg


async def spread_thread(conn: asyncpg.Connection, thread_id: int, start: datetime, step: timedelta) -> None:
    """The thread's k-th post (by id) written at start + k·step + k²·7 min; an edit three hours after its post;
    revisions, votes and notifications follow their post; the thread's creation and activity its posts."""
    await conn.execute(
        "WITH o AS (SELECT id, (row_number() OVER (ORDER BY id) - 1)::float8 AS k FROM posts WHERE thread_id = $1),"
        " t AS (SELECT o.id, $2::timestamptz + $3::interval * o.k + interval '7 minutes' * o.k * o.k AS at FROM o)"
        " UPDATE posts p SET created_at = t.at,"
        " edited_at = CASE WHEN p.edited_at IS NULL THEN NULL ELSE t.at + interval '3 hours' END"
        " FROM t WHERE p.id = t.id", thread_id, start, step)
    await conn.execute(
        "UPDATE post_revisions r SET edited_at = CASE WHEN r.revision = 1 THEN p.created_at"
        " ELSE coalesce(p.edited_at, p.created_at) END FROM posts p WHERE r.post_id = p.id AND p.thread_id = $1",
        thread_id)
    await conn.execute(
        "UPDATE votes v SET created_at = p.created_at + interval '40 minutes' FROM posts p"
        " WHERE v.post_id = p.id AND p.thread_id = $1", thread_id)
    await conn.execute(
        "UPDATE notifications n SET created_at = p.created_at FROM posts p WHERE n.post_id = p.id AND p.thread_id = $1",
        thread_id)
    await conn.execute(
        "UPDATE threads t SET created_at = s.first, last_activity_at = s.last"
        " FROM (SELECT min(created_at) AS first, max(created_at) AS last FROM posts WHERE thread_id = $1) s"
        " WHERE t.id = $1", thread_id)


async def joined(conn: asyncpg.Connection, user_id: int, at: datetime) -> None:
    """The user signed up at `at`."""
    await conn.execute("UPDATE users SET created_at = $2 WHERE id = $1", user_id, at)
