"""Ignoring (CONTRACT rev. 3 "Trust and spam"): a member's posts come to the ignorer collapsed (`"ignored": true`
on the Post) and none of their actions notifies or mails the ignorer (store/notifications.py leaves them out).
Moderators cannot be ignored."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import Invalid, NotFound
from . import users


async def set_ignored(conn: asyncpg.Connection, user: asyncpg.Record, username: str, ignored: bool) -> bool:
    """Ignore `username` or stop; 422 field username for a moderator or oneself, 404 for nobody."""
    target = await users.by_username(conn, username)
    if target is None:
        raise NotFound(f"No user {username!r}", field="username")
    if target["id"] == user["id"]:
        raise Invalid("You cannot ignore yourself", field="username")
    if target["is_moderator"] and ignored:
        raise Invalid("Moderators cannot be ignored", field="username")
    if ignored:
        await conn.execute("INSERT INTO user_ignores (user_id, ignored_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           user["id"], target["id"])
    else:
        await conn.execute("DELETE FROM user_ignores WHERE user_id = $1 AND ignored_id = $2", user["id"], target["id"])
    return ignored


async def ignored_by(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> set[int]:
    """The ids of the members `user_id` ignores."""
    return {r["ignored_id"] for r in await conn.fetch("SELECT ignored_id FROM user_ignores WHERE user_id = $1",
                                                      user_id)}


def mark_post(post: dict[str, Any], ignored: set[int]) -> dict[str, Any]:
    """The post marked `"ignored": true` (a copy) when its author is one of `ignored`, else the post itself."""
    return {**post, "ignored": True} if post["author"]["id"] in ignored else post


def mark(page: dict[str, Any], ignored: set[int]) -> dict[str, Any]:
    """A thread page with the posts of ignored members marked `"ignored": true` (copied: a kept page is shared)."""
    if not ignored:
        return page

    responses = [{**mark_post(r, ignored), "comments": [mark_post(c, ignored) for c in r["comments"]]}
                 for r in page["responses"]]
    return {**page, "question": mark_post(page["question"], ignored), "responses": responses}
