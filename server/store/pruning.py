"""What expires, and its deletion in batches (the loop that runs it is server/housekeeping.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from .. import limits
from . import meta


@dataclass(frozen=True)
class Pruner:
    """`sql` deletes at most $1 rows that have expired and answers DELETE n."""

    table: str
    sql: str
    args: tuple[str, ...] = ()  # names of Settings fields passed as $2, $3…


PRUNERS: list[Pruner] = [
    # Sessions unused for PARLEY_SESSION_IDLE_DAYS are already refused at sign-in; delete their rows.
    Pruner("sessions", """
        DELETE FROM sessions WHERE id IN (
            SELECT id FROM sessions WHERE last_seen_at < now() - make_interval(secs => $2 * 86400) LIMIT $1)""",
           ("session_idle_days",)),
    # Events past retention: a `since` before the oldest kept event gets `reset: true`.
    Pruner("thread_events", """
        DELETE FROM thread_events WHERE (thread_id, seq) IN (
            SELECT thread_id, seq FROM thread_events
            WHERE created_at < now() - make_interval(days => $2) LIMIT $1)""",
           ("event_retention_days",)),
    # Mail sent or given up a month ago (their text is already cleared once sent).
    Pruner("mail_outbox", """
        DELETE FROM mail_outbox WHERE id IN (
            SELECT id FROM mail_outbox WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL)
              AND created_at < now() - interval '30 days' LIMIT $1)"""),
    # Webhook deliveries delivered or given up a month ago (the log shows the last month).
    Pruner("webhook_deliveries", """
        DELETE FROM webhook_deliveries WHERE id IN (
            SELECT id FROM webhook_deliveries WHERE (delivered_at IS NOT NULL OR failed_at IS NOT NULL)
              AND created_at < now() - interval '30 days' LIMIT $1)"""),
    # Verification and reset tokens used or expired a day ago.
    Pruner("email_tokens", """
        DELETE FROM email_tokens WHERE hash IN (
            SELECT hash FROM email_tokens WHERE expires_at < now() - interval '1 day'
               OR used_at < now() - interval '1 day' LIMIT $1)"""),
    # Drafts nobody touched for limits.DRAFT_KEEP_DAYS (a post that succeeds deletes its own at once).
    Pruner("drafts", f"""
        DELETE FROM drafts WHERE (user_id, key) IN (
            SELECT user_id, key FROM drafts
            WHERE updated_at < now() - interval '{limits.DRAFT_KEEP_DAYS} days' LIMIT $1)"""),
    # A retry comes within seconds, not days.
    Pruner("idempotency_keys", """
        DELETE FROM idempotency_keys WHERE (user_id, thread_id, key) IN (
            SELECT user_id, thread_id, key FROM idempotency_keys
            WHERE created_at < now() - interval '1 day' LIMIT $1)"""),
]


async def prune(pool: asyncpg.Pool, lock: int, batch: int, settings: Any) -> dict[str, int] | None:
    """One round in one transaction under a try-lock: rows deleted per table (at most `batch` each), or None
    when another process holds the round (it never waits)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await meta.try_round_lock(conn, lock):
            return None
        done: dict[str, int] = {}
        for p in PRUNERS:
            status = await conn.execute(p.sql, batch, *(getattr(settings, a) for a in p.args))
            done[p.table] = int(status.split()[-1])
        return done
