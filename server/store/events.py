"""thread_events: the backlog every live delivery is checked against.

append() is the one place an event is written. It takes the thread's next seq
with UPDATE ... RETURNING, whose row lock orders concurrent writers, and stores
the event in the caller's transaction. The frame it returns is published by
the API only after COMMIT.
"""

from __future__ import annotations

import asyncpg

from ..wire import event_frame


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


# The most event data one read brings into memory: an HTTP page of events, one replay chunk, one backfill
# step. At least one event is always read, so a reader makes progress whatever the size of one event.
READ_BUDGET = 1 << 20


async def since(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int, after: int,
                limit: int = 1000, budget: int = READ_BUDGET) -> list[asyncpg.Record]:
    """Events with seq > after, oldest first, at most `limit` of them and about `budget` bytes of data
    (the database stops at the budget: what is not returned is never transferred); `data` is JSON text."""
    return await conn.fetch(
        """
        SELECT seq, name, data, created_at FROM (
            SELECT seq, name, data::text AS data, created_at, octet_length(data::text) AS size,
                   sum(octet_length(data::text)) OVER (ORDER BY seq) AS upto
            FROM thread_events WHERE thread_id = $1 AND seq > $2 ORDER BY seq LIMIT $3
        ) e WHERE upto - size < $4 ORDER BY seq
        """, thread_id, after, limit, budget)


async def frames_since(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int, after: int,
                       limit: int = 1000, budget: int = READ_BUDGET) -> list[tuple[int, bytes]]:
    """(seq, frame) for the stored events after `after` (one budgeted read), built without decoding the data."""
    rows = await since(conn, thread_id, after, limit, budget)
    return [(r["seq"], event_frame(thread_id, r["seq"], r["name"], r["data"])) for r in rows]


async def scrub_post(conn: asyncpg.Connection, thread_id: int, post_id: int) -> None:
    """Empty the body and html of a deleted post in its stored post.created/post.edited events.

    The post's text then leaves the backlog (HTTP events and websocket replay). `deleted` stays as it
    was in each event, so an applier still counts the response until the post.deleted event that follows
    (stored in the same transaction): replaying the events gives exactly what a fresh fetch shows."""
    await conn.execute(
        """
        UPDATE thread_events SET data = data || '{"body": "", "html": ""}'::jsonb
        WHERE thread_id = $1 AND name IN ('post.created', 'post.edited') AND (data->>'id')::bigint = $2
        """, thread_id, post_id)


async def oldest_kept(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int) -> int | None:
    return await conn.fetchval("SELECT min(seq) FROM thread_events WHERE thread_id = $1", thread_id)
