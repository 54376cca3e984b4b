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


async def since(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int, after: int,
                limit: int = 1000) -> list[asyncpg.Record]:
    """Events with seq > after, oldest first; `data` is JSON text, never decoded."""
    return await conn.fetch(
        "SELECT seq, name, data::text AS data, created_at FROM thread_events"
        " WHERE thread_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", thread_id, after, limit)


async def frames_since(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int, after: int,
                       limit: int = 100000) -> list[tuple[int, bytes]]:
    """(seq, frame) for every stored event after `after`, built without decoding the data."""
    rows = await since(conn, thread_id, after, limit)
    return [(r["seq"], event_frame(thread_id, r["seq"], r["name"], r["data"])) for r in rows]


async def oldest_kept(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int) -> int | None:
    return await conn.fetchval("SELECT min(seq) FROM thread_events WHERE thread_id = $1", thread_id)
