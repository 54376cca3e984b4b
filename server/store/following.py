"""Following and read positions (CONTRACT "Notifications", Thread's `following` and `unread`).

thread_follows holds one row per user and thread they follow or explicitly unfollowed; writing in a
thread adds a following row unless one exists (so an unfollow stays). thread_reads holds the reader's
position, a seq that only moves forwards. `unread` is the number of non-deleted responses and comments
by others whose post.created seq is past that position (posts.seq).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import NotFound

# For a list or a page: the reader's following flag and unread count, joined onto `t` (threads) with the
# reader as $READER. Kept as one copy for every query that shows a Thread to a signed-in reader.
READER_COLUMNS = """,
       coalesce(rf.following, false) AS following,
       CASE WHEN rr.seq IS NULL THEN NULL ELSE (
           SELECT count(*) FROM posts up WHERE up.thread_id = t.id AND up.seq > rr.seq AND NOT up.deleted
             AND up.kind <> 'question' AND up.author_id <> rr.user_id) END AS unread"""


def reader_joins(param: int) -> str:
    return (f" LEFT JOIN thread_follows rf ON rf.thread_id = t.id AND rf.user_id = ${param}"
            f" LEFT JOIN thread_reads rr ON rr.thread_id = t.id AND rr.user_id = ${param}")


async def advance(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, thread_id: int, seq: int) -> None:
    await conn.execute(
        "INSERT INTO thread_reads (user_id, thread_id, seq) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id, thread_id) DO UPDATE SET seq = greatest(thread_reads.seq, EXCLUDED.seq),"
        " read_at = now()", user_id, thread_id, seq)


async def set_following(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, thread_id: int,
                        following: bool) -> bool:
    row = await conn.fetchrow(
        """
        WITH t AS (SELECT id FROM threads WHERE id = $2 AND NOT deleted)
        INSERT INTO thread_follows (user_id, thread_id, following) SELECT $1, t.id, $3 FROM t
        ON CONFLICT (user_id, thread_id) DO UPDATE SET following = EXCLUDED.following, changed_at = now()
        RETURNING following
        """, user_id, thread_id, following)
    if row is None:
        raise NotFound(f"No thread {thread_id}")
    return bool(row["following"])


async def set_read(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, thread_id: int, seq: int) -> None:
    """Move the read position forwards to `seq` (at most the thread's seq); never backwards."""
    row = await conn.fetchrow(
        """
        WITH t AS (SELECT id, seq FROM threads WHERE id = $2 AND NOT deleted)
        INSERT INTO thread_reads (user_id, thread_id, seq) SELECT $1, t.id, least($3, t.seq) FROM t
        ON CONFLICT (user_id, thread_id) DO UPDATE SET seq = greatest(thread_reads.seq, EXCLUDED.seq),
            read_at = now()
        RETURNING seq
        """, user_id, thread_id, seq)
    if row is None:
        raise NotFound(f"No thread {thread_id}")


_MINE = "FROM votes v WHERE v.user_id = $1 AND v.post_id = any($3::bigint[])"
_READER_STATE = ("SELECT t.seq" + READER_COLUMNS + ","
                 f" (SELECT array_agg(v.post_id ORDER BY v.post_id) {_MINE}) AS vote_ids,"
                 f" (SELECT array_agg(v.value ORDER BY v.post_id) {_MINE}) AS vote_values"
                 " FROM threads t" + reader_joins(1) + " WHERE t.id = $2 AND NOT t.deleted")


async def reader_state(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, thread_id: int,
                       post_ids: list[int]) -> tuple[int, dict[str, Any], dict[int, int]] | None:
    """A thread page's per-reader part in one read: the thread's seq, {following, unread} and the reader's
    votes on these posts (all from one snapshot, so the votes are those of that seq: a vote moves it).
    None if the thread is deleted or was never there."""
    row = await conn.fetchrow(_READER_STATE, user_id, thread_id, post_ids)
    if row is None:
        return None
    votes = dict(zip(row["vote_ids"] or [], row["vote_values"] or [], strict=True))
    return row["seq"], {"following": row["following"], "unread": row["unread"]}, votes


async def decorate(conn: asyncpg.Connection | asyncpg.Pool, user_id: int | None,
                   threads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each Thread's `following` and `unread` for the reader (guests keep false/null): one query."""
    if user_id is None or not threads:
        return threads
    rows = await conn.fetch("SELECT t.id" + READER_COLUMNS + " FROM threads t" + reader_joins(1)
                            + " WHERE t.id = any($2::bigint[])", user_id, [t["id"] for t in threads])
    by_id = {r["id"]: r for r in rows}
    for t in threads:
        r = by_id.get(t["id"])
        if r is not None:
            t["following"], t["unread"] = r["following"], r["unread"]
    return threads
