"""The public moderation log: what moderators did to other people's content (docs/api.md, "Moderation").

record() is called by the store function that performs the action, inside its transaction, so an
action and its entry commit together. Entries name their target (thread, post, user), never copy
text: a deleted post's entry links to its thread and shows nothing of what was deleted.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from .. import limits
from ..wire import iso
from . import users
from .cursor import cursor_decode, cursor_encode

ACTIONS = ("post.edited", "post.deleted", "thread.renamed", "thread.locked", "thread.unlocked", "thread.moved",
           "thread.accepted", "user.suspended", "user.unsuspended", "flag.resolved", "flag.dismissed",
           "thread.duplicate", "user.silenced", "user.unsilenced")


async def record(conn: asyncpg.Connection, action: str, moderator_id: int | None, *, thread_id: int | None = None,
                 post_id: int | None = None, user_id: int | None = None, reason: str | None = None) -> None:
    """One entry; `moderator_id` None: the system acted (an auto-silence, store/silence.py)."""
    assert action in ACTIONS, f"unknown modlog action {action!r}"
    await conn.execute(
        "INSERT INTO modlog (action, moderator_id, thread_id, post_id, target_user_id, reason)"
        " VALUES ($1, $2, $3, $4, $5, $6)", action, moderator_id, thread_id, post_id, user_id, reason)


def acts_on_other(user: asyncpg.Record, author_id: int) -> bool:
    """Whether an action by `user` on content of `author_id` is a moderator's, to be logged."""
    return bool(user["is_moderator"]) and user["id"] != author_id


async def listing(conn: asyncpg.Connection | asyncpg.Pool, limit: int, before: str | None) -> dict[str, Any]:
    """Entries newest first, `limit` per page, keyset by id."""
    start = cursor_decode(before, "before", (int,))[0] if before else limits.BIGINT
    rows = await conn.fetch(
        """
        SELECT l.id, l.action, l.thread_id, l.post_id, l.reason, l.created_at,
               m.id AS mod_id, m.username AS mod_username, m.display_name AS mod_display_name,
               m.avatar_url AS mod_avatar_url,
               t.username AS target_username
        FROM modlog l LEFT JOIN users m ON m.id = l.moderator_id LEFT JOIN users t ON t.id = l.target_user_id
        WHERE l.id < $1 ORDER BY l.id DESC LIMIT $2
        """, start, limit + 1)
    entries = []
    for r in rows[:limit]:
        target: dict[str, Any] = {}
        if r["thread_id"] is not None:
            target["thread_id"] = r["thread_id"]
        if r["post_id"] is not None:
            target["post_id"] = r["post_id"]
        if r["target_username"] is not None:
            target["username"] = r["target_username"]
        entries.append({"id": r["id"], "action": r["action"], "moderator": users.brief(r, "mod_"),
                        "target": target, "reason": r["reason"], "created_at": iso(r["created_at"])})
    more = len(rows) > limit
    return {"entries": entries, "next": cursor_encode(entries[-1]["id"]) if more and entries else None}
