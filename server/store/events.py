"""thread_events: the backlog every live delivery is checked against, and the one owner of `seq`.

Every change to a thread takes the thread's next seq and stores its event row here, in the
transaction of the change (ARCHITECTURE rule 1), in one of two ways:

- `append()`, for a write made of several statements: the UPDATE that takes the seq (its row lock
  orders the thread's concurrent writers until COMMIT), then the INSERT of the event row;
- `take_seq()` and `insert()`, the same two steps as SQL fragments, for a write that is one statement
  (a new post: store/posts.py embeds them as CTEs, so the reply path costs one round trip).

No other module writes `threads.seq` or `thread_events` (tests/unit/test_write_path.py greps for it).
The frame each returns is published by the API only after COMMIT (server/effects.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from ..wire import event_frame


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event, as the broker carries it: its thread, seq and encoded frame."""

    thread_id: int
    seq: int
    frame: bytes


def take_seq(also: str = "", where: str = "", returning: str = "id, seq") -> str:
    """SQL taking thread $1's next seq (an UPDATE: its row lock orders the thread's writers until commit).

    `also`: more assignments of the same UPDATE (e.g. "last_activity_at = now()"); `where`: conditions that
    refuse the write (then no row comes back, and nothing is taken)."""
    sets = "seq = seq + 1" + (f", {also}" if also else "")
    cond = "id = $1" + (f" AND {where}" if where else "")
    return f"UPDATE threads SET {sets} WHERE {cond} RETURNING {returning}"


def insert(source: str, thread_seq: str, name: str, data: str) -> str:
    """SQL storing one event per row of `source` (a FROM clause, e.g. CTEs of the statement): `thread_seq`
    is its thread id and seq (taken with take_seq()), `data` the SQL expression of the event's jsonb. It
    returns the stored data as JSON text: the event's bytes, exactly as replay will read them."""
    if not name.replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"not an event name: {name!r}")  # names are ours, never input; still, keep SQL clean
    return (f"INSERT INTO thread_events (thread_id, seq, name, data) SELECT {thread_seq}, '{name}', {data}"
            f" FROM {source} RETURNING data::text AS data")


_TAKE = take_seq(returning="seq")
_STORE = "INSERT INTO thread_events (thread_id, seq, name, data) VALUES ($1, $2, $3, $4::text::jsonb)"


async def append(conn: asyncpg.Connection, thread_id: int, name: str,
                 data: bytes | Callable[[int], Awaitable[bytes]]) -> Event:
    """Take the thread's next seq and store event `name` with it, in the caller's transaction.

    `data` is the event's JSON, or a function of the new seq that makes it (a Thread in thread.updated
    carries its own seq, so it is read after the seq is taken)."""
    seq = await conn.fetchval(_TAKE, thread_id)
    assert seq is not None, "append to a missing thread"
    body = data if isinstance(data, bytes) else await data(seq)
    await conn.execute(_STORE, thread_id, seq, name, body.decode())
    return Event(thread_id, seq, event_frame(thread_id, seq, name, body))


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
        """
        SELECT p.thread_id, t.seq AS head, e.seq, e.name, e.data
        FROM unnest($1::bigint[], $2::bigint[]) AS p(thread_id, after)
        LEFT JOIN threads t ON t.id = p.thread_id
        LEFT JOIN LATERAL (
            SELECT seq, name, data FROM (
                SELECT seq, name, data::text AS data, octet_length(data::text) AS size,
                       sum(octet_length(data::text)) OVER (ORDER BY seq) AS upto
                FROM thread_events WHERE thread_id = p.thread_id AND seq > p.after ORDER BY seq LIMIT $3
            ) x WHERE upto - size < $4
        ) e ON true
        ORDER BY p.thread_id, e.seq
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
    (stored in the same transaction): replaying the events gives exactly what a fresh fetch shows."""
    await conn.execute(
        """
        UPDATE thread_events SET data = data || '{"body": "", "html": ""}'::jsonb
        WHERE thread_id = $1 AND name IN ('post.created', 'post.edited') AND (data->>'id')::bigint = $2
        """, thread_id, post_id)
