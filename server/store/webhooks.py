"""Webhooks and their outbox (docs/operations.md "Webhooks").

A delivery is a row of webhook_deliveries, written in the transaction of its event (store/events.py); its
payload is the stored event, read when it is sent. Order per thread: a row is due only when no earlier row of
its (webhook, thread) is still pending, so a thread's events reach a webhook one after another, in seq order,
whichever process sends them. A process claims the due heads with FOR UPDATE SKIP LOCKED in one autocommitted
statement that moves their next_try_at LEASE seconds on (the lease: a process that dies mid-send leaves them
due again when it runs out); the next row of a group becomes due the moment its head is marked delivered or
failed, and the sender that delivered the head claims it at once (claim_next).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from .. import limits
from ..errors import NotFound
from ..wire import iso
from . import events, threads
from .cursor import cursor_decode, cursor_encode

FIELDS = "id, url, events, created_at"
PENDING = "delivered_at IS NULL AND failed_at IS NULL"
MAX_HOOKS = 50  # a deployment's webhooks: each adds a row per event it wants to every write


def webhook_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "url": row["url"], "events": list(row["events"]), "created_at": iso(row["created_at"])}


async def create(conn: asyncpg.Connection, url: str, names: list[str], secret: str, user_id: int) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"INSERT INTO webhooks (url, events, secret, created_by) VALUES ($1, $2, $3, $4) RETURNING {FIELDS}",
        url, names, secret, user_id)
    return webhook_dict(row)


async def count_locked(conn: asyncpg.Connection) -> int:
    """How many webhooks there are, the table locked against other makers until the transaction ends (readers
    and event writers are not held up: they take weaker locks)."""
    await conn.execute("LOCK TABLE webhooks IN SHARE ROW EXCLUSIVE MODE")
    return await conn.fetchval("SELECT count(*) FROM webhooks")


async def listing(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    return [webhook_dict(r) for r in await conn.fetch(f"SELECT {FIELDS} FROM webhooks ORDER BY id DESC")]


async def delete(conn: asyncpg.Connection | asyncpg.Pool, webhook_id: int) -> None:
    """The webhook and its deliveries, sent or not, go (a send in flight is marked nowhere)."""
    if await conn.fetchval("DELETE FROM webhooks WHERE id = $1 RETURNING id", webhook_id) is None:
        raise NotFound(f"No webhook {webhook_id}")


def delivery_dict(row: asyncpg.Record) -> dict[str, Any]:
    status = "delivered" if row["delivered_at"] else "failed" if row["failed_at"] else "pending"
    return {"id": f"msg_{row['id']}", "type": row["name"], "thread": row["thread_id"], "seq": row["seq"],
            "status": status, "tries": row["tries"], "last_status": row["last_status"],
            "last_error": row["last_error"], "created_at": iso(row["created_at"]),
            "delivered_at": iso(row["delivered_at"]) if row["delivered_at"] else None,
            "next_try_at": iso(row["next_try_at"]) if status == "pending" else None}


async def deliveries(conn: asyncpg.Connection | asyncpg.Pool, webhook_id: int, limit: int,
                     before: str | None) -> dict[str, Any]:
    """The delivery log of a webhook, newest first: {deliveries, next} (next: the cursor of the following page)."""
    if await conn.fetchval("SELECT 1 FROM webhooks WHERE id = $1", webhook_id) is None:
        raise NotFound(f"No webhook {webhook_id}")
    start = cursor_decode(before, "before", (int,))[0] if before else limits.BIGINT
    rows = await conn.fetch(
        "SELECT * FROM webhook_deliveries WHERE webhook_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        webhook_id, start, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"deliveries": [delivery_dict(r) for r in rows], "next": cursor_encode(rows[-1]["id"]) if more else None}


# What a claim returns: the delivery, where it goes, and the event it carries (its data as JSON text, the
# post's text put back; NULL when the event is no longer stored).
_CLAIMED = f"""
    d.id, d.webhook_id, d.thread_id, d.seq, d.name, d.tries,
    extract(epoch FROM now() - d.created_at)::float8 AS age, w.url, w.secret,
    (SELECT {events.DATA} FROM thread_events e {events.TEXT}
     WHERE e.thread_id = d.thread_id AND e.seq = d.seq) AS data
"""


async def claim(pool: asyncpg.Pool, limit: int, lease: float) -> list[asyncpg.Record]:
    """Up to `limit` due heads (each the first pending delivery of its webhook and thread), the longest due
    first, leased to the caller for `lease` seconds."""
    return await pool.fetch(
        f"""
        WITH c AS (
            UPDATE webhook_deliveries SET next_try_at = now() + make_interval(secs => $2), tries = tries + 1
            WHERE id IN (SELECT h.id FROM webhook_deliveries h
                         WHERE h.{PENDING.replace(" AND ", " AND h.")} AND h.next_try_at <= now()
                           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries b
                                           WHERE b.webhook_id = h.webhook_id AND b.thread_id = h.thread_id
                                             AND b.seq < h.seq AND b.{PENDING.replace(" AND ", " AND b.")})
                         ORDER BY h.next_try_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING *
        )
        SELECT {_CLAIMED} FROM c d JOIN webhooks w ON w.id = d.webhook_id ORDER BY d.webhook_id, d.thread_id
        """, limit, lease)


async def delivered_and_next(pool: asyncpg.Pool, delivery_id: int, status: int, lease: float
                             ) -> asyncpg.Record | None:
    """Mark a delivery delivered and claim the next of its (webhook, thread) if it is due now, in ONE statement
    (the one after each success, which keeps a busy thread's events flowing). Every part of a statement sees the
    snapshot from before it, so the next row is looked for after the delivered one's seq, not by "pending"."""
    return await pool.fetchrow(
        f"""
        WITH done AS (
            UPDATE webhook_deliveries SET delivered_at = now(), last_status = $2, last_error = NULL
            WHERE id = $1 AND {PENDING} RETURNING webhook_id, thread_id, seq
        ), nxt AS (
            SELECT n.id FROM webhook_deliveries n JOIN done ON n.webhook_id = done.webhook_id
                                                    AND n.thread_id = done.thread_id AND n.seq > done.seq
            WHERE n.{PENDING.replace(" AND ", " AND n.")}
            ORDER BY n.seq LIMIT 1 FOR UPDATE OF n SKIP LOCKED
        ), c AS (
            UPDATE webhook_deliveries SET next_try_at = now() + make_interval(secs => $3), tries = tries + 1
            WHERE id = (SELECT id FROM nxt) AND next_try_at <= now()
            RETURNING *
        )
        SELECT {_CLAIMED} FROM c d JOIN webhooks w ON w.id = d.webhook_id
        """, delivery_id, status, lease)


async def retry_later(pool: asyncpg.Pool, delivery_id: int, delay: float, status: int | None, error: str) -> None:
    await pool.execute(
        f"UPDATE webhook_deliveries SET next_try_at = now() + make_interval(secs => $2), last_status = $3,"
        f" last_error = $4 WHERE id = $1 AND {PENDING}", delivery_id, delay, status, error[:500])


async def mark_failed(pool: asyncpg.Pool, delivery_id: int, status: int | None, error: str) -> None:
    await pool.execute(
        f"UPDATE webhook_deliveries SET failed_at = now(), last_status = $2, last_error = $3"
        f" WHERE id = $1 AND {PENDING}", delivery_id, status, error[:500])


async def release(pool: asyncpg.Pool, ids: list[int]) -> None:
    """Give back claimed deliveries this process will not send now (due again at once, the try given back)."""
    if ids:
        await pool.execute(f"UPDATE webhook_deliveries SET next_try_at = now(), tries = greatest(tries - 1, 0)"
                           f" WHERE id = any($1::bigint[]) AND {PENDING}", ids)


async def thread_json(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int) -> dict[str, Any] | None:
    """The Thread a thread.created delivery carries (as it is when sent), or None when it is deleted."""
    try:
        return await threads.get(conn, thread_id)
    except NotFound:
        return None


async def oldest_pending_age(pool: asyncpg.Pool) -> float:
    return await pool.fetchval(
        f"SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM webhook_deliveries"
        f" WHERE {PENDING}")
