"""The mail outbox (docs/operations.md "E-mail: the outbox").

A mail is a row written in the transaction of its cause (enqueue), so it exists exactly when its cause
committed. Any process claims due rows with FOR UPDATE SKIP LOCKED in one autocommitted statement that
moves their next_try_at LEASE seconds on (the lease: a process that dies mid-send leaves them due again
when it runs out, and no SMTP conversation ever runs inside a transaction). A mail the SMTP server
accepted is marked sent at once (mark_sent), before anything else, and its text is cleared then: the
tokens it carried are kept nowhere in plain text after that.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..outbox.compose import Mail
from . import meta, users


async def enqueue(conn: asyncpg.Connection | asyncpg.Pool, mail: Mail, user_id: int | None) -> int:
    return await conn.fetchval(
        "INSERT INTO mail_outbox (kind, user_id, recipient, message) VALUES ($1, $2, $3, $4) RETURNING id",
        mail.kind, user_id, mail.recipient, mail.message)


async def claim(pool: asyncpg.Pool, limit: int, lease: float) -> list[asyncpg.Record]:
    """Up to `limit` due mails, oldest due first, leased to the caller for `lease` seconds."""
    return await pool.fetch(
        """
        UPDATE mail_outbox SET next_try_at = now() + make_interval(secs => $2), tries = tries + 1
        WHERE id IN (SELECT id FROM mail_outbox
                     WHERE sent_at IS NULL AND failed_at IS NULL AND next_try_at <= now()
                     ORDER BY next_try_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING id, kind, recipient, message, tries, created_at,
                  extract(epoch FROM now() - created_at)::float8 AS age
        """, limit, lease)


async def mark_sent(pool: asyncpg.Pool, mail_id: int) -> None:
    await pool.execute("UPDATE mail_outbox SET sent_at = now(), message = '', last_error = NULL WHERE id = $1",
                       mail_id)


async def retry_later(pool: asyncpg.Pool, mail_id: int, delay: float, error: str) -> None:
    await pool.execute("UPDATE mail_outbox SET next_try_at = now() + make_interval(secs => $2), last_error = $3"
                       " WHERE id = $1 AND sent_at IS NULL", mail_id, delay, error)


async def mark_failed(pool: asyncpg.Pool, mail_id: int, error: str) -> None:
    await pool.execute("UPDATE mail_outbox SET failed_at = now(), last_error = $2 WHERE id = $1 AND sent_at IS NULL",
                       mail_id, error)


async def release(pool: asyncpg.Pool, ids: list[int]) -> None:
    """Give back the lease of claimed mails this process will not send now (due again at once; the try
    taken by the claim is given back too)."""
    if ids:
        await pool.execute("UPDATE mail_outbox SET next_try_at = now(), tries = greatest(tries - 1, 0)"
                           " WHERE id = any($1::bigint[]) AND sent_at IS NULL", ids)


async def oldest_unsent_age(pool: asyncpg.Pool) -> float:
    """Seconds since the oldest mail still waiting (0 when none): the outbox's health in one number."""
    return await pool.fetchval(
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 FROM mail_outbox"
        " WHERE sent_at IS NULL AND failed_at IS NULL")


async def next_due_in(pool: asyncpg.Pool) -> float | None:
    """Seconds until the next waiting mail is due (0 if one is due now), None when none waits."""
    return await pool.fetchval(
        "SELECT greatest(0, extract(epoch FROM min(next_try_at) - now()))::float8 FROM mail_outbox"
        " WHERE sent_at IS NULL AND failed_at IS NULL")


async def enqueue_many(conn: asyncpg.Connection, mails: list[tuple[Mail, int]]) -> None:
    """Several mails in one statement (a notification round's)."""
    if mails:
        await conn.execute(
            "INSERT INTO mail_outbox (kind, user_id, recipient, message)"
            " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])",
            [m.kind for m, _ in mails], [u for _, u in mails], [m.recipient for m, _ in mails],
            [m.message for m, _ in mails])


# --- Notification mail (outbox/notify.py): Zulip's rule, each notification looked at once when due.

async def skip_unmailable(conn: asyncpg.Connection, delay: float) -> int:
    """Due notifications that can never be mailed are marked skipped in bulk: read by now, or of a user with
    no verified address or with `never`. Most notifications are these, so few reach the per-group work."""
    status = await conn.execute(
        """
        UPDATE notifications n SET mail = 'skipped' FROM users u
        WHERE n.mail = 'due' AND n.created_at <= now() - make_interval(secs => $1) AND u.id = n.user_id
          AND (n.read OR NOT u.email_verified OR u.email IS NULL OR u.email_notifications = 'never')
        """, delay)
    return int(status.split()[-1])


async def due_groups(conn: asyncpg.Connection, delay: float, limit: int) -> list[tuple[int, int]]:
    """(user, thread) pairs with a notification due, the oldest first; those notifications are locked for
    this transaction (FOR UPDATE SKIP LOCKED: another process takes others)."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT user_id, thread_id, created_at FROM notifications
            WHERE mail = 'due' AND created_at <= now() - make_interval(secs => $1)
            ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED
        )
        SELECT user_id, thread_id FROM due GROUP BY user_id, thread_id ORDER BY min(created_at)
        """, delay, limit)
    return [(r["user_id"], r["thread_id"]) for r in rows]


async def group_notifications(conn: asyncpg.Connection, groups: list[tuple[int, int]],
                              delay: float) -> list[asyncpg.Record]:
    """Every unmailed notification of those (user, thread) pairs made by now, read or not, oldest first per
    pair, locked, with what a mail needs: the recipient, the thread, the actor and the post's text."""
    return await conn.fetch(
        f"""
        SELECT n.id, n.user_id, n.thread_id, n.kind, n.post_id, n.read,
               n.created_at <= now() - make_interval(secs => $3) AS due,
               u.email, u.email_verified, u.email_notifications, u.unsubscribe_epoch, t.title, p.body,
               {users.brief_columns("u", "user_")}, {users.brief_columns("a", "actor_")}
        FROM notifications n
        JOIN users u ON u.id = n.user_id JOIN users a ON a.id = n.actor_id
        JOIN threads t ON t.id = n.thread_id JOIN posts p ON p.id = n.post_id
        WHERE n.mail = 'due' AND (n.user_id, n.thread_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))
        ORDER BY n.user_id, n.thread_id, n.created_at, n.id
        FOR UPDATE OF n SKIP LOCKED
        """, [g[0] for g in groups], [g[1] for g in groups], delay)


async def mark_notifications(conn: asyncpg.Connection, mailed: list[int], skipped: list[int]) -> None:
    if mailed:
        await conn.execute("UPDATE notifications SET mail = 'mailed' WHERE id = any($1::bigint[])", mailed)
    if skipped:
        await conn.execute("UPDATE notifications SET mail = 'skipped' WHERE id = any($1::bigint[])", skipped)


async def next_notification_due(pool: asyncpg.Pool, delay: float) -> float | None:
    """Seconds until the next unmailed notification is due (0: now), None when none waits."""
    return await pool.fetchval(
        "SELECT greatest(0, extract(epoch FROM min(created_at) + make_interval(secs => $1) - now()))::float8"
        " FROM notifications WHERE mail = 'due'", delay)


# --- Digests: one round at a time per deployment (an advisory try-lock, as housekeeping).

DIGEST_LOCK = 0x70610002  # a round lock of this database (meta.try_round_lock), beside housekeeping's
PERIODS = {"daily": 86400, "weekly": 7 * 86400}


async def digest_round_lock(conn: asyncpg.Connection) -> bool:
    """Whether this transaction holds the digest round (a try-lock: another process has it, False)."""
    return await meta.try_round_lock(conn, DIGEST_LOCK)


async def digest_candidates(conn: asyncpg.Connection, period: str, limit: int) -> list[asyncpg.Record]:
    """Users with a verified address and this digest period whose last digest (or sign-up) is a period ago,
    with when they last visited (a signed-in request touches their session every few minutes; a post)."""
    return await conn.fetch(
        f"""
        SELECT x.*, extract(epoch FROM now() - x.visited_at)::float8 AS away_for FROM (
            SELECT {users.brief_columns("u")}, u.email, u.unsubscribe_epoch,
                   greatest(u.created_at,
                            (SELECT max(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id),
                            (SELECT max(p.created_at) FROM posts p WHERE p.author_id = u.id)) AS visited_at
            FROM users u
            WHERE u.email_verified AND u.email IS NOT NULL AND u.digest = $1
              AND (u.suspended_until IS NULL OR u.suspended_until <= now())
              AND coalesce(u.digest_at, u.created_at) <= now() - make_interval(secs => $2)
            ORDER BY u.id LIMIT $3
        ) x
        """, period, PERIODS[period], limit)


async def active_threads(conn: asyncpg.Connection, period: str, limit: int = 10) -> list[dict[str, Any]]:
    """The period's most active threads (most new non-deleted posts), as the digest lists them."""
    rows = await conn.fetch(
        """
        SELECT t.id, t.title, count(*) AS posts FROM posts p JOIN threads t ON t.id = p.thread_id
        WHERE p.created_at > now() - make_interval(secs => $1) AND NOT p.deleted AND NOT t.deleted
        GROUP BY t.id, t.title ORDER BY count(*) DESC, max(p.created_at) DESC LIMIT $2
        """, PERIODS[period], limit)
    return [dict(r) for r in rows]


async def digest_done(conn: asyncpg.Connection, user_ids: list[int], at_visit: list[tuple[int, Any]]) -> None:
    """The next digest of `user_ids` a period from now; of those who visited lately, a period after the visit."""
    if user_ids:
        await conn.execute("UPDATE users SET digest_at = now() WHERE id = any($1::bigint[])", user_ids)
    if at_visit:
        await conn.execute("UPDATE users u SET digest_at = v.at FROM unnest($1::bigint[], $2::timestamptz[])"
                           " AS v(id, at) WHERE u.id = v.id", [i for i, _ in at_visit], [a for _, a in at_visit])
