"""thread_events: the backlog every live delivery is checked against, and the one owner of `seq`.

Every change to a thread takes the thread's next seq and stores its event row here, in the
transaction of the change (ARCHITECTURE rule 1), in one of two ways:

- `append()`, for a write made of several statements: the UPDATE that takes the seq (its row lock
  orders the thread's concurrent writers until COMMIT), then the INSERT of the event row;
- `take_seq()` and `insert()`, the same two steps as SQL fragments, for a write that is one statement
  (a new post: store/posts.py embeds them as CTEs, so the reply path costs one round trip).

No other module writes `threads.seq` or `thread_events` (tests/unit/test_write_path.py greps for it).

Each stored event is also queued for the webhooks subscribed to it, in the same statement (the webhook outbox,
webhook_deliveries: one small row per webhook, the payload read from thread_events when it is sent; outbox/
webhooks.py). With no webhook that wants it, that part inserts nothing. Event 1 of a thread (its question's
post.created) is `thread.created` to webhooks (CONTRACT "Webhooks").
The frame each returns is published by the API only after COMMIT (server/effects.py).

A post's text is stored once (migration 0008): the post.created/post.edited event of a post keeps its
Post JSON without `body` and `html` and names the revision that holds them (columns post_id, revision →
post_revisions); every read puts the two fields back in SQL (_DATA), so the events endpoint, /ws replay
and backfill answer the same JSON as if the event held them (`append_post()`, and `insert()` with `post`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..wire import encode, event_frame


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event, as the broker carries it: its thread, seq and encoded frame."""

    thread_id: int
    seq: int
    frame: bytes
    webhooks: int = 0  # webhook deliveries queued with it (effects.after_commit wakes the deliverer)


def webhook_name(seq: str, name: str) -> str:
    """SQL of the name webhooks know an event by: a thread's event 1 is thread.created."""
    return f"CASE WHEN {seq} = 1 AND {name} = 'post.created' THEN 'thread.created' ELSE {name} END"


def queue_webhooks(source: str, thread_id: str, seq: str, name: str) -> str:
    """SQL (an INSERT … RETURNING 1, for a CTE) queueing one delivery per webhook subscribed to the event of each
    row of `source`; `thread_id`, `seq` and `name` are SQL over it."""
    hook = webhook_name(seq, name)
    return (f"INSERT INTO webhook_deliveries (webhook_id, thread_id, seq, name)"
            f" SELECT w.id, {thread_id}, {seq}, {hook} FROM {source} JOIN webhooks w ON {hook} = any(w.events)"
            f" RETURNING 1")


def take_seq(also: str = "", where: str = "", returning: str = "id, seq") -> str:
    """SQL taking thread $1's next seq (an UPDATE: its row lock orders the thread's writers until commit).

    `also`: more assignments of the same UPDATE (e.g. "last_activity_at = now()"); `where`: conditions that
    refuse the write (then no row comes back, and nothing is taken)."""
    sets = "seq = seq + 1" + (f", {also}" if also else "")
    cond = "id = $1" + (f" AND {where}" if where else "")
    return f"UPDATE threads SET {sets} WHERE {cond} RETURNING {returning}"


# The Post fields whose text is the revision's: stored there, not in the event.
TEXT_FIELDS = ("body", "html")


def insert(source: str, thread_seq: str, name: str, data: str,
           post: tuple[str, str, str, str] | None = None) -> str:
    """SQL storing one event per row of `source` (a FROM clause, e.g. CTEs of the statement): `thread_seq`
    is its thread id and seq (taken with take_seq()), `data` the SQL expression of the event's jsonb. It
    returns the stored data as JSON text: the event's bytes, exactly as replay will read them.

    `post`: for a post's event, SQL for (post id, revision, body, html): the text is left out of the stored
    data (it is the revision's) and put back in what the statement returns; body and html must be values
    the RETURNING clause can see (parameters)."""
    if not name.replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"not an event name: {name!r}")  # names are ours, never input; still, keep SQL clean
    if post is None:
        return (f"INSERT INTO thread_events (thread_id, seq, name, data) SELECT {thread_seq}, '{name}', {data}"
                f" FROM {source} RETURNING data::text AS data")
    post_id, revision, body, html = post
    text_out = " - ".join([f"({data})", *(f"'{f}'" for f in TEXT_FIELDS)])
    return (f"INSERT INTO thread_events (thread_id, seq, name, data, post_id, revision)"
            f" SELECT {thread_seq}, '{name}', {text_out}, {post_id}, {revision} FROM {source}"
            f" RETURNING (data || jsonb_build_object('body', {body}, 'html', {html}))::text AS data")


_TAKE = take_seq(returning="seq")
_HOOKS = f"h AS ({queue_webhooks('e', 'e.thread_id', 'e.seq', 'e.name')}) SELECT count(*) FROM h"
_STORE = ("WITH e AS (INSERT INTO thread_events (thread_id, seq, name, data) VALUES ($1, $2, $3, $4::text::jsonb)"
          f" RETURNING thread_id, seq, name), {_HOOKS}")
_STORE_POST = ("WITH e AS (INSERT INTO thread_events (thread_id, seq, name, data, post_id, revision)"
               f" VALUES ($1, $2, $3, $4::text::jsonb, $5, $6) RETURNING thread_id, seq, name), {_HOOKS}")


async def append(conn: asyncpg.Connection, thread_id: int, name: str,
                 data: bytes | Callable[[int], Awaitable[bytes]]) -> Event:
    """Take the thread's next seq and store event `name` with it, in the caller's transaction.

    `data` is the event's JSON, or a function of the new seq that makes it (a Thread in thread.updated
    carries its own seq, so it is read after the seq is taken)."""
    seq = await conn.fetchval(_TAKE, thread_id)
    assert seq is not None, "append to a missing thread"
    body = data if isinstance(data, bytes) else await data(seq)
    hooks = await conn.fetchval(_STORE, thread_id, seq, name, body.decode())
    return Event(thread_id, seq, event_frame(thread_id, seq, name, body), hooks)


async def append_post(conn: asyncpg.Connection, thread_id: int, name: str, post: dict[str, Any]) -> Event:
    """append() for a post's event (post.edited): `post` is the contract's Post, whose body and html are those
    of its revision `post["revision"]`, already in post_revisions. The stored data leaves the text out and
    names the revision; the frame carries the whole Post, as every read gives it."""
    seq = await conn.fetchval(_TAKE, thread_id)
    assert seq is not None, "append to a missing thread"
    hooks = await conn.fetchval(_STORE_POST, thread_id, seq, name,
                                encode({k: v for k, v in post.items() if k not in TEXT_FIELDS}).decode(),
                                post["id"], post["revision"])
    return Event(thread_id, seq, event_frame(thread_id, seq, name, encode(post)), hooks)


# The most event data one read brings into memory: an HTTP page of events, one replay chunk, one backfill
# step. At least one event is always read, so a reader makes progress whatever the size of one event.
READ_BUDGET = 1 << 20

# An event's data as JSON text, a post's text put back from its revision (in SQL; `e` is thread_events,
# `r` its LEFT JOINed post_revisions row). jsonb orders keys itself, so the text is what the event
# would show had it kept body and html.
DATA = _DATA = """(CASE WHEN e.post_id IS NULL THEN e.data
              ELSE e.data || jsonb_build_object('body', r.body, 'html', r.html) END)::text"""
TEXT = _TEXT = "LEFT JOIN post_revisions r ON r.post_id = e.post_id AND r.revision = e.revision"


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


async def recent_frames(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int, head: int, count: int,
                        budget: int = READ_BUDGET) -> list[tuple[int, bytes, float]]:
    """(seq, frame, seconds since its commit) for the last `count` events up to `head`, oldest first (one
    read of about `budget` bytes, counted from the newest: those are what a resume needs; a room's recent
    history when it opens, live/replay.py). The age is the database's own
    clock against itself, so it needs no agreement between machines' clocks."""
    rows = await conn.fetch(
        f"""
        SELECT seq, name, data, extract(epoch FROM clock_timestamp() - created_at)::float8 AS age FROM (
            SELECT seq, name, data, created_at, octet_length(data) AS size,
                   sum(octet_length(data)) OVER (ORDER BY seq DESC) AS upto
            FROM (
                SELECT e.seq, e.name, {_DATA} AS data, e.created_at FROM thread_events e {_TEXT}
                WHERE e.thread_id = $1 AND e.seq > $2 AND e.seq <= $3 ORDER BY e.seq LIMIT $4
            ) d
        ) x WHERE upto - size < $5 ORDER BY seq
        """, thread_id, max(0, head - count), head, count, budget)
    return [(r["seq"], event_frame(thread_id, r["seq"], r["name"], r["data"]), max(0.0, r["age"])) for r in rows]


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
