"""Silence (CONTRACT rev. 3 "Trust and spam"; docs/moderation.md "Auto-silence"): an account whose posts are hidden
from everyone but moderators and itself, and which may not post.

Three different members flagging posts of an account under privileges.NEW_ACCOUNT reputation as `spam` silence it
(the system acts: its log entry `user.silenced` has no moderator). Flag rings are held off twice: an account at
10 reputation or more is never silenced so, and a flagger any of whose spam flags on the account a moderator
dismissed counts no more for that account. Only flags raised after a moderator last lifted a silence count.

A silence (or its lifting) is one transaction: the users row, the log entry, and a `thread.updated` event in
every thread the account has live posts in (so each thread's seq moves: the guests' page cache drops its copy,
and watchers reread), plus a site frame `{"type": "silenced", "user", "silenced"}` for every socket.
"""

from __future__ import annotations

import asyncpg

from .. import privileges
from ..wire import silenced_frame
from . import Written, modlog, threads, users

FLAGGERS = 3  # distinct spam flaggers that silence a new account

_FLAGGERS = """
SELECT count(DISTINCT f.flagger_id) FROM flags f JOIN posts p ON p.id = f.post_id JOIN users u ON u.id = p.author_id
WHERE p.author_id = $1 AND f.reason = 'spam' AND f.status <> 'dismissed'
  AND f.created_at > coalesce(u.silence_lifted_at, '-infinity')
  AND NOT EXISTS (SELECT 1 FROM flags d JOIN posts dp ON dp.id = d.post_id
                  WHERE dp.author_id = $1 AND d.flagger_id = f.flagger_id AND d.reason = 'spam'
                    AND d.status = 'dismissed')
"""

# Silencing one account is serialized by this advisory lock (key: the user id), not by the users row: the row
# is written last, after the thread locks its events take, so the lock order stays threads → users as in
# every other write (a vote holds its thread and then takes the author's row).
_LOCK = "SELECT pg_advisory_xact_lock(7370111, $1::integer)"


async def after_spam_flag(conn: asyncpg.Connection, post_id: int) -> Written[None]:
    """After a spam flag on `post_id` (same transaction): silence its author if this made three flaggers."""
    author_id = await conn.fetchval("SELECT author_id FROM posts WHERE id = $1", post_id)
    if author_id is None:
        return Written(None)
    await conn.execute(_LOCK, author_id)
    author = await conn.fetchrow("SELECT * FROM users WHERE id = $1", author_id)
    if (author["silenced_at"] is not None or author["is_moderator"]
            or author["reputation"] >= privileges.NEW_ACCOUNT):
        return Written(None)
    if await conn.fetchval(_FLAGGERS, author_id) < FLAGGERS:
        return Written(None)
    return await set_silenced(conn, author_id, None, True, f"{FLAGGERS} members flagged spam")


async def set_silenced(conn: asyncpg.Connection, user_id: int, moderator_id: int | None, silenced: bool,
                       reason: str | None = None) -> Written[None]:
    """Silence the user or lift it; `moderator_id` None: the system. Nothing when it is already so."""
    await conn.execute(_LOCK, user_id)
    target = await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
    if (target["silenced_at"] is not None) == silenced:
        return Written(None)
    thread_ids = [r["thread_id"] for r in await conn.fetch(
        "SELECT DISTINCT p.thread_id FROM posts p JOIN threads t ON t.id = p.thread_id"
        " WHERE p.author_id = $1 AND NOT p.deleted AND NOT t.deleted ORDER BY p.thread_id", user_id)]
    written: Written[None] = Written(None, site_frames=[silenced_frame(users.brief(target), silenced)])
    for thread_id in thread_ids:
        written.merge(await threads.touch(conn, thread_id))
    if silenced:
        await conn.execute("UPDATE users SET silenced_at = now() WHERE id = $1", user_id)
    else:
        await conn.execute("UPDATE users SET silenced_at = NULL, silence_lifted_at = now() WHERE id = $1", user_id)
    await modlog.record(conn, "user.silenced" if silenced else "user.unsilenced", moderator_id,
                        user_id=user_id, reason=reason)
    return written


async def is_silenced(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> bool:
    return bool(await conn.fetchval("SELECT silenced_at IS NOT NULL FROM users WHERE id = $1", user_id))


