"""Periodic pruning of what expires: one job per deployment, however many processes serve it.

Every process runs the loop; each round takes `pg_try_advisory_xact_lock`, so only one
process does a round at a time and the others skip it (a try-lock: nobody ever waits). A
round deletes at most BATCH rows per table (short transactions, no long row locks on a big
backlog); when a table had more, the next round comes soon instead of in an hour.
Later features add their own entries to PRUNERS.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import asyncpg

from . import config, metrics

log = logging.getLogger(__name__)

LOCK = 0x7061726C6579 + 1  # beside the migration lock (server/migrations)
BATCH = 5000
EVERY = 600.0  # seconds between rounds that found little to do
SOON = 1.0  # seconds before the next round when a table had more than BATCH to prune


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
    # Verification and reset tokens used or expired a day ago.
    Pruner("email_tokens", """
        DELETE FROM email_tokens WHERE hash IN (
            SELECT hash FROM email_tokens WHERE expires_at < now() - interval '1 day'
               OR used_at < now() - interval '1 day' LIMIT $1)"""),
    # A retry comes within seconds, not days.
    Pruner("idempotency_keys", """
        DELETE FROM idempotency_keys WHERE (user_id, thread_id, key) IN (
            SELECT user_id, thread_id, key FROM idempotency_keys
            WHERE created_at < now() - interval '1 day' LIMIT $1)"""),
]


async def run_round(pool: asyncpg.Pool, settings: config.Settings, batch: int = BATCH) -> dict[str, int] | None:
    """One round: rows deleted per table, or None when another process holds the round."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK):
            return None
        done: dict[str, int] = {}
        for p in PRUNERS:
            status = await conn.execute(p.sql, batch, *(getattr(settings, a) for a in p.args))
            done[p.table] = int(status.split()[-1])
    for table, n in done.items():
        if n:
            metrics.PRUNED_ROWS.labels(table).inc(n)
    if any(done.values()):
        log.info("housekeeping pruned %s", ", ".join(f"{t}={n}" for t, n in done.items() if n))
    return done


async def loop(pool: asyncpg.Pool, settings: config.Settings) -> None:
    """Run rounds forever (a lifespan task): soon after start, then about every EVERY seconds."""
    delay = 5.0 * random.random()
    while True:
        await asyncio.sleep(delay)
        delay = EVERY * (0.5 + random.random())
        try:
            done = await run_round(pool, settings)
            if done and any(n >= BATCH for n in done.values()):
                delay = SOON
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("housekeeping round failed: %s", exc)
