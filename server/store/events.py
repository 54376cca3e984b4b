"""thread_events: the backlog every live delivery is checked against.

append() is the one place an event is written. It takes the thread's next seq
with UPDATE ... RETURNING, whose row lock orders concurrent writers, and stores
the event in the caller's transaction. The frame it returns is published by
the API only after COMMIT.

A post's text is stored once (migration 0008): the post.created/post.edited
event of a post keeps its Post JSON without `body` and `html` and names the
revision that holds them (columns post_id, revision → post_revisions); every
read puts the two fields back in SQL (_DATA), so the events endpoint, /ws replay
and backfill answer the same JSON as if the event held them.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..wire import encode, event_frame


async def next_seq(conn: asyncpg.Connection, thread_id: int) -> int:
    """Take the thread's next seq (locks the thread row until commit)."""
    seq = await conn.fetchval("UPDATE threads SET seq = seq + 1 WHERE id = $1 RETURNING seq", thread_id)
    assert seq is not None, "next_seq on a missing thread"
    return seq


async def store(conn: asyncpg.Connection, thread_id: int, seq: int, name: str, data_json: bytes) -> bytes:
    """Store event `seq` (already taken with next_seq) and return its encoded frame."""
    await conn.execute(
        "INSERT INTO thread_events (thread_id, seq, name, data) VALUES ($1, $2, $3, $4::text::jsonb)",
        thread_id, seq, name, data_json.decode())
    return event_frame(thread_id, seq, name, data_json)


async def append(conn: asyncpg.Connection, thread_id: int, name: str, data_json: bytes) -> bytes:
    return await store(conn, thread_id, await next_seq(conn, thread_id), name, data_json)


# The Post fields whose text is the revision's: stored there, not in the event.
TEXT_FIELDS = ("body", "html")


async def store_post(conn: asyncpg.Connection, thread_id: int, seq: int, name: str, post: dict[str, Any]) -> bytes:
    """Store event `seq` (post.created / post.edited) of `post` (the contract's Post, whose body and html are
    those of its revision `post["revision"]`, already in post_revisions): the stored data leaves the text
    out and names the revision. Returns the frame with the whole Post, as every read gives it."""
    await conn.execute(
        "INSERT INTO thread_events (thread_id, seq, name, data, post_id, revision)"
        " VALUES ($1, $2, $3, $4::text::jsonb, $5, $6)",
        thread_id, seq, name, encode({k: v for k, v in post.items() if k not in TEXT_FIELDS}).decode(),
        post["id"], post["revision"])
    return event_frame(thread_id, seq, name, encode(post))


async def append_post(conn: asyncpg.Connection, thread_id: int, name: str, post: dict[str, Any]) -> bytes:
    return await store_post(conn, thread_id, await next_seq(conn, thread_id), name, post)


# The most event data one read brings into memory: an HTTP page of events, one replay chunk, one backfill
# step. At least one event is always read, so a reader makes progress whatever the size of one event.
READ_BUDGET = 1 << 20

# An event's data as JSON text, a post's text put back from its revision (in SQL; `e` is thread_events,
# `r` its LEFT JOINed post_revisions row). jsonb orders keys itself, so the text is what the event
# would show had it kept body and html.
_DATA = """(CASE WHEN e.post_id IS NULL THEN e.data
              ELSE e.data || jsonb_build_object('body', r.body, 'html', r.html) END)::text"""
_TEXT = "LEFT JOIN post_revisions r ON r.post_id = e.post_id AND r.revision = e.revision"


async def since(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int, after: int,
                limit: int = 1000, budget: int = READ_BUDGET) -> list[asyncpg.Record]:
    """Events with seq > after, oldest first, at most `limit` of them and about `budget` bytes of data
    (the database stops at the budget: what is not returned is never transferred); `data` is JSON text."""
    return await conn.fetch(
        f"""
        SELECT seq, name, data, created_at FROM (
            SELECT seq, name, data, created_at, octet_length(data) AS size,
                   sum(octet_length(data)) OVER (ORDER BY seq) AS upto
            FROM (
                SELECT e.seq, e.name, {_DATA} AS data, e.created_at FROM thread_events e {_TEXT}
                WHERE e.thread_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3
            ) d
        ) x WHERE upto - size < $4 ORDER BY seq
        """, thread_id, after, limit, budget)


async def frames_since(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int, after: int,
                       limit: int = 1000, budget: int = READ_BUDGET) -> list[tuple[int, bytes]]:
    """(seq, frame) for the stored events after `after` (one budgeted read), built without decoding the data."""
    rows = await since(conn, thread_id, after, limit, budget)
    return [(r["seq"], event_frame(thread_id, r["seq"], r["name"], r["data"])) for r in rows]


async def frames_after(conn: asyncpg.Connection | asyncpg.Pool, afters: list[tuple[int, int]],
                       limit: int = 1000, budget: int = 64 * 1024
                       ) -> dict[int, tuple[int | None, list[tuple[int, bytes]]]]:
    """For many threads in ONE query (a backfill after a broker reconnect reads every room of a process
    at once, not one query per room): thread → (its current seq, or None when the thread is gone; the
    (seq, frame) after its `after`, oldest first). Each thread is read like since(): at most `limit`
    events and about `budget` bytes, at least one event. The seq and the events come from one snapshot,
    so a thread whose last returned seq is below its seq has more to read (or, if the events do not
    start right after `after`, they were pruned)."""
    rows = await conn.fetch(
        f"""
        SELECT p.thread_id, t.seq AS head, x.seq, x.name, x.data
        FROM unnest($1::bigint[], $2::bigint[]) AS p(thread_id, after)
        LEFT JOIN threads t ON t.id = p.thread_id
        LEFT JOIN LATERAL (
            SELECT seq, name, data FROM (
                SELECT seq, name, data, octet_length(data) AS size, sum(octet_length(data)) OVER (ORDER BY seq) AS upto
                FROM (
                    SELECT e.seq, e.name, {_DATA} AS data FROM thread_events e {_TEXT}
                    WHERE e.thread_id = p.thread_id AND e.seq > p.after ORDER BY e.seq LIMIT $3
                ) d
            ) y WHERE upto - size < $4
        ) x ON true
        ORDER BY p.thread_id, x.seq
        """, [t for t, _ in afters], [a for _, a in afters], limit, budget)
    out: dict[int, tuple[int | None, list[tuple[int, bytes]]]] = {}
    for r in rows:
        tid = r["thread_id"]
        entry = out.setdefault(tid, (r["head"], []))
        if r["seq"] is not None:
            entry[1].append((r["seq"], event_frame(tid, r["seq"], r["name"], r["data"])))
    return out


async def scrub_post(conn: asyncpg.Connection, thread_id: int, post_id: int) -> None:
    """Empty the body and html of a deleted post in its stored post.created/post.edited events.

    The post's text then leaves the backlog (HTTP events and websocket replay). `deleted` stays as it
    was in each event, so an applier still counts the response until the post.deleted event that follows
    (stored in the same transaction): replaying the events gives exactly what a fresh fetch shows. The
    events no longer name the post's revisions, whose text only moderators' records keep."""
    await conn.execute(
        """
        UPDATE thread_events SET data = data || '{"body": "", "html": ""}'::jsonb, post_id = NULL, revision = NULL
        WHERE thread_id = $1 AND name IN ('post.created', 'post.edited') AND (data->>'id')::bigint = $2
        """, thread_id, post_id)

