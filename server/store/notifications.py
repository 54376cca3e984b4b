"""Notifications (CONTRACT "Notifications"; docs/live.md "User channel").

Written in the transaction of the post that causes them, for every recipient at once with ONE
`INSERT … SELECT`: the candidates of each kind are unioned with a rank, DISTINCT ON (user) keeps the
most specific one, the actor is never a recipient, and UNIQUE (post_id, user_id) with ON CONFLICT
DO NOTHING makes "one per user and post" hold however the post is edited later. The API publishes
each new row on its recipient's user channel after COMMIT (store never publishes).

A deleted post's notifications are deleted (withdrawn: no longer listed or counted), and so are those
of a deleted thread.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import asyncpg

from ..wire import iso
from . import users
from .cursor import cursor_decode, cursor_encode

MAX_MENTIONS = 20  # users notified of mentions per post, edits included (CONTRACT)


def notify_sql(actor: str, thread: str, post: str, mentioned: str, kind: str, author: str,
               parent: str, new_post: bool = False) -> str:
    """The INSERT of every notification a post causes, given SQL expressions for its inputs: a statement
    of its own (notify() passes $1…$6) or a CTE of the one statement that writes a new post (posts.py).

    Ranks: mention 1, comment/response 2, followed 3 (lower wins). `mentioned`: user ids in order of
    appearance; `kind`: the post's kind ('response', 'comment', or 'mentions' for mentions only: a
    question, or an edit); `author`: the post's author (never notified of their own post); `parent`: the
    post's parent (a comment's response). A CTE cannot see the row its statement inserts, hence `parent`
    passed in rather than read from the post.

    `new_post`: the post is the one this statement inserts, so no notification of it can exist (no other
    transaction can see it before this one commits) and DISTINCT ON gives one row per user: the INSERT goes
    without ON CONFLICT, whose speculative insertion (a lock taken and released, an index probe and one more WAL
    record per row) was a good part of each recipient's cost (issue 33). UNIQUE (post_id, user_id) still holds."""
    return f"""
INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id)
SELECT DISTINCT ON (c.user_id) c.user_id, c.kind, {actor}, {thread}, {post}
FROM (
    SELECT m.uid AS user_id, 'mention' AS kind, 1 AS rank FROM (
        SELECT m.uid FROM unnest({mentioned}::bigint[]) WITH ORDINALITY AS m(uid, ord)
        WHERE m.uid <> {actor} AND m.uid <> {author}
          AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.post_id = {post} AND n.user_id = m.uid)
        ORDER BY m.ord
        LIMIT greatest(0, {MAX_MENTIONS}
                          - (SELECT count(*) FROM notifications n WHERE n.post_id = {post} AND n.kind = 'mention'))
    ) m
    UNION ALL
    -- A response: the asker. A comment: the response's author and the asker.
    SELECT q.author_id, {kind}, 2 FROM posts q WHERE q.thread_id = {thread} AND q.kind = 'question'
        AND {kind} <> 'mentions'
    UNION ALL
    SELECT r.author_id, 'comment', 2 FROM posts r WHERE r.id = {parent} AND {kind} = 'comment'
    UNION ALL
    SELECT f.user_id, 'followed', 3 FROM thread_follows f WHERE f.thread_id = {thread} AND f.following
        AND {kind} = 'response'
) c
WHERE c.user_id <> {actor} AND c.user_id <> {author}
  AND {post} IS NOT NULL  -- in a post's statement: none when the post was refused
  AND NOT EXISTS (SELECT 1 FROM user_ignores i WHERE i.user_id = c.user_id AND i.ignored_id = {actor})
ORDER BY c.user_id, c.rank
{"" if new_post else "ON CONFLICT (post_id, user_id) DO NOTHING"}
RETURNING id, user_id, kind, created_at
"""


_NOTIFY = notify_sql("$1", "$2", "$3", "$4", "$5", "$6", "(SELECT parent_id FROM posts WHERE id = $3)")


async def resolve_mentions(conn: asyncpg.Connection | asyncpg.Pool, names: list[str]) -> list[asyncpg.Record]:
    """The existing users among canonical names, in the order given: rows of (id, username, lname)."""
    if not names:
        return []
    return await conn.fetch(
        "SELECT u.id, u.username, lower(u.username) AS lname FROM unnest($1::text[]) WITH ORDINALITY AS n(name, ord)"
        " JOIN users u ON lower(u.username) = n.name AND u.deleted_at IS NULL ORDER BY n.ord", names)


_MENTION_LINK = re.compile(r'<a class="mention" href="/u/([^"/]+)"')


async def mentioned_in(conn: asyncpg.Connection | asyncpg.Pool, html: str) -> list[int]:
    """The ids of the users a rendered post mentions (its mention links), in order, once each."""
    names = list(dict.fromkeys(m.lower() for m in _MENTION_LINK.findall(html)))
    ids: list[int] = []
    for r in await resolve_mentions(conn, names):
        if r["id"] not in ids:
            ids.append(r["id"])
    return ids


async def notify(conn: asyncpg.Connection, actor: dict[str, Any], thread_id: int, post_id: int, kind: str,
                 author_id: int, mentioned: list[int]) -> list[dict[str, Any]]:
    """Write the notifications a post (kind response/comment) causes, or only its mentions (kind 'mentions').

    Returns [{"user_id", "notification"}] for the API to publish after commit."""
    rows = await conn.fetch(_NOTIFY, actor["id"], thread_id, post_id, mentioned, kind, author_id)
    if not rows:
        return []
    title = await conn.fetchval("SELECT title FROM threads WHERE id = $1", thread_id)
    return published(rows, actor, {"id": thread_id, "title": title}, post_id)


class Notified(Sequence[dict[str, Any]]):
    """One post's new notifications as its statement returned them: columns (ids, recipients, kinds, times)
    and what they share. The rows the API publishes one by one are built only if asked for (a small
    fan-out); a large one goes out as one batch made from the columns (live/userchannel.batch), so a
    reply that notifies 1,000 followers builds no 1,000 dicts twice."""

    __slots__ = ("ids", "users", "kinds", "created", "actor", "thread", "post_id", "_rows")

    def __init__(self, ids: list[int], users: list[int], kinds: list[str], created: list[Any],
                 actor: dict[str, Any], thread: dict[str, Any], post_id: int) -> None:
        self.ids, self.users, self.kinds, self.created = ids or [], users or [], kinds or [], created or []
        self.actor, self.thread, self.post_id = actor, thread, post_id
        self._rows: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: Any) -> Any:
        return self.rows()[i]

    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = published([{"id": i, "user_id": u, "kind": k, "created_at": c} for i, u, k, c
                                    in zip(self.ids, self.users, self.kinds, self.created, strict=True)],
                                   self.actor, self.thread, self.post_id)
        return self._rows

    def shared(self) -> dict[str, Any]:
        """What every notification of the post says alike, in the order a Notification lists it."""
        return {"read": False, "actor": self.actor, "thread": self.thread, "post_id": self.post_id}

    def groups(self) -> list[list[Any]]:
        """[[kind, created_at, [user id, notification id, …]], …]: the recipients by what differs."""
        times: dict[Any, str] = {}
        groups: dict[tuple[str, str], list[int]] = {}
        for i, u, k, c in zip(self.ids, self.users, self.kinds, self.created, strict=True):
            if (at := times.get(c)) is None:
                at = times[c] = iso(c) or ""
            if (ids := groups.get((k, at))) is None:
                ids = groups[(k, at)] = []
            ids += (u, i)
        return [[k, c, ids] for (k, c), ids in groups.items()]


def published(rows: list[Any], actor: dict[str, Any], thread: dict[str, Any], post_id: int) -> list[dict[str, Any]]:
    """The new notification rows (id, user_id, kind, created_at) as the API publishes them."""
    # The rows of one statement share its now(): format each distinct time once (iso() per row was a
    # quarter of a 1,000-follower reply's CPU, bench/README "Coming back (issue 15)").
    times: dict[Any, str | None] = {}
    out = []
    for r in rows:
        at = r["created_at"]
        if (text := times.get(at)) is None:
            text = times[at] = iso(at)
        out.append({"user_id": r["user_id"],
                    "notification": {"id": r["id"], "kind": r["kind"], "created_at": text, "read": False,
                                     "actor": actor, "thread": thread, "post_id": post_id}})
    return out


async def notify_one(conn: asyncpg.Connection, actor: dict[str, Any], user_id: int, kind: str, thread_id: int,
                     post_id: int) -> list[dict[str, Any]]:
    """One notification (e.g. `accepted`), unless it is the actor's own or the user already has one for the post."""
    if user_id == actor["id"] or await conn.fetchval(
            "SELECT 1 FROM user_ignores WHERE user_id = $1 AND ignored_id = $2", user_id, actor["id"]):
        return []  # nobody hears of their own action, nor of one by someone they ignore
    row = await conn.fetchrow(
        "INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (post_id, user_id) DO NOTHING RETURNING id, created_at", user_id, kind, actor["id"],
        thread_id, post_id)
    if row is None:
        return []
    title = await conn.fetchval("SELECT title FROM threads WHERE id = $1", thread_id)
    return [{"user_id": user_id,
             "notification": {"id": row["id"], "kind": kind, "created_at": iso(row["created_at"]), "read": False,
                              "actor": actor, "thread": {"id": thread_id, "title": title}, "post_id": post_id}}]


async def withdraw_post(conn: asyncpg.Connection, post_id: int) -> set[int]:
    """Withdraw a deleted post's notifications; the users whose unread count dropped."""
    rows = await conn.fetch("DELETE FROM notifications WHERE post_id = $1 RETURNING user_id, read", post_id)
    return {r["user_id"] for r in rows if not r["read"]}


async def withdraw_thread(conn: asyncpg.Connection, thread_id: int) -> set[int]:
    """Withdraw every notification of a deleted thread; the users whose unread count dropped. Found by the thread's
    posts (a notification's thread is its post's): no index on notifications.thread_id is kept for this one rare
    statement, since every notification would pay for it (migration 0018)."""
    rows = await conn.fetch("DELETE FROM notifications WHERE post_id IN (SELECT id FROM posts WHERE thread_id = $1)"
                            " RETURNING user_id, read", thread_id)
    return {r["user_id"] for r in rows if not r["read"]}


async def withdraw_kind(conn: asyncpg.Connection, post_id: int, kind: str) -> set[int]:
    """Withdraw one kind of a post's notifications (an accepted answer withdrawn); whose count dropped."""
    rows = await conn.fetch("DELETE FROM notifications WHERE post_id = $1 AND kind = $2 RETURNING user_id, read",
                            post_id, kind)
    return {r["user_id"] for r in rows if not r["read"]}


async def unread_counts(conn: asyncpg.Connection | asyncpg.Pool, user_ids: list[int]) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT u.id, (SELECT count(*) FROM notifications n WHERE n.user_id = u.id AND NOT n.read) AS unread"
        " FROM unnest($1::bigint[]) AS u(id)", user_ids)
    return {r["id"]: r["unread"] for r in rows}


async def unread(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM notifications WHERE user_id = $1 AND NOT read", user_id)


async def listing(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, limit: int,
                  before: str | None) -> dict[str, Any]:
    """The user's notifications, newest first, keyset-paged by id; with their unread count."""
    before_id = cursor_decode(before, "before", (int,))[0] if before is not None else None
    rows = await conn.fetch(
        f"""
        SELECT n.id, n.kind, n.created_at, n.read, n.post_id, n.thread_id, t.title,
               {users.brief_columns("a", "actor_")}
        FROM notifications n JOIN users a ON a.id = n.actor_id JOIN threads t ON t.id = n.thread_id
        WHERE n.user_id = $1 AND ($2::bigint IS NULL OR n.id < $2)
        ORDER BY n.id DESC LIMIT $3
        """, user_id, before_id, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [{"id": r["id"], "kind": r["kind"], "created_at": iso(r["created_at"]), "read": r["read"],
              "actor": users.brief(r, "actor_"),
              "thread": {"id": r["thread_id"], "title": r["title"]}, "post_id": r["post_id"]} for r in rows]
    return {"notifications": items, "unread": await unread(conn, user_id),
            "next": cursor_encode(rows[-1]["id"]) if more else None}


async def mark_read(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, ids: list[int] | None) -> tuple[int, bool]:
    """Mark some (ids) or all (None) of the user's notifications read: (unread count now, whether it changed)."""
    row = await conn.fetchrow(
        """
        WITH changed AS (
            UPDATE notifications SET read = true
            WHERE user_id = $1 AND NOT read AND ($2::bigint[] IS NULL OR id = any($2::bigint[]))
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM changed) AS changed,
               (SELECT count(*) FROM notifications WHERE user_id = $1 AND NOT read) AS before
        """, user_id, ids)
    # The CTE's UPDATE is not visible to the outer count in the same statement: subtract.
    return row["before"] - row["changed"], row["changed"] > 0
