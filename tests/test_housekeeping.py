"""Housekeeping (server/housekeeping.py) against a real PostgreSQL: what expires is pruned in bounded
batches, what is live is kept, one process does a round at a time, and a running server does it by itself."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from server import config, db, housekeeping
from server.store import meta
from support.databases import create_database, drop_database

SETTINGS = config.Settings(session_idle_days=30, event_retention_days=30)


async def _fill(conn: asyncpg.Connection, expired: int, live: int) -> None:
    """`expired` sessions, events and idempotency keys past their time, and `live` of each within it."""
    uid = await conn.fetchval("INSERT INTO users (username, display_name, password_hash)"
                              " VALUES ('hk_' || md5(random()::text), 'HK', 'x') RETURNING id")
    cid = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('hk-' || md5(random()::text), 'C')"
                              " RETURNING id")
    tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title) VALUES ($1, $2, 't') RETURNING id",
                              cid, uid)
    hook = await conn.fetchval("INSERT INTO webhooks (url, events, secret) VALUES ('https://h.example', '{x}', 's')"
                               " RETURNING id")
    for i in range(expired + live):
        old = i < expired
        age = "40 days" if old else "1 hour"
        await conn.execute("INSERT INTO sessions (id, user_id, last_seen_at)"
                           " VALUES ($1, $2, now() - $3::text::interval)", f"s-{tid}-{i}", uid, age)
        await conn.execute("INSERT INTO thread_events (thread_id, seq, name, data, created_at)"
                           " VALUES ($1, $2, 'x', '{}', now() - $3::text::interval)", tid, i + 1, age)
        await conn.execute("INSERT INTO idempotency_keys (user_id, thread_id, key, created_at)"
                           " VALUES ($1, $4, $2, now() - $3::text::interval)", uid, f"k{i}",
                           "2 days" if old else "1 minute", tid)
        # Mail: sent 40 days ago goes; sent an hour ago, and unsent however old, stay.
        await conn.execute("INSERT INTO mail_outbox (kind, recipient, message, created_at, sent_at)"
                           " VALUES ('digest', 'a@example.org', '', now() - $1::text::interval, now())", age)
        # Webhook deliveries: delivered 40 days ago goes; delivered an hour ago stays.
        await conn.execute("INSERT INTO webhook_deliveries (webhook_id, thread_id, seq, name, created_at, delivered_at)"
                           " VALUES ($1, $2, $3, 'x', now() - $4::text::interval, now())", hook, tid, i + 1, age)
        # Drafts: untouched for 40 days goes; changed an hour ago stays.
        await conn.execute("INSERT INTO drafts (user_id, key, body, updated_at)"
                           " VALUES ($1, $2, 'unsent', now() - $3::text::interval)", uid, f"thread:{i + 1}", age)
        # Tokens: used two days ago goes; made an hour ago and unused stays.
        await conn.execute("INSERT INTO email_tokens (hash, user_id, purpose, email, epoch, expires_at, used_at)"
                           " VALUES (decode(md5(random()::text), 'hex'), $1, 'reset', 'a@example.org', 0,"
                           " now() + interval '1 hour', CASE WHEN $2 THEN now() - interval '2 days' END)", uid, old)


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


TABLES = ("sessions", "thread_events", "idempotency_keys", "mail_outbox", "email_tokens", "webhook_deliveries",
          "drafts")


async def test_a_round_prunes_only_what_expired(fresh_db):
    """Expired sessions, events past retention, day-old idempotency keys, month-old sent mail, used tokens,
    month-old webhook deliveries and drafts go; recent ones stay."""
    pool = await db.create_pool(fresh_db, max_size=2)
    try:
        async with pool.acquire() as conn:
            await _fill(conn, expired=3, live=2)
        done = await housekeeping.run_round(pool, SETTINGS)
        assert done == dict.fromkeys(TABLES, 3)
        async with pool.acquire() as conn:
            assert await _counts(conn) == dict.fromkeys(TABLES, 2)
        assert await housekeeping.run_round(pool, SETTINGS) == dict.fromkeys(TABLES, 0)
    finally:
        await pool.close()


async def test_rounds_are_batched(fresh_db):
    """A round deletes at most `batch` rows per table; the next rounds take the rest."""
    pool = await db.create_pool(fresh_db, max_size=2)
    try:
        async with pool.acquire() as conn:
            await _fill(conn, expired=5, live=1)
        rounds = [await housekeeping.run_round(pool, SETTINGS, batch=2) for _ in range(4)]
        assert [r["sessions"] for r in rounds if r] == [2, 2, 1, 0]
        async with pool.acquire() as conn:
            assert (await _counts(conn))["thread_events"] == 1
    finally:
        await pool.close()


async def test_only_one_process_does_a_round(fresh_db):
    """While another connection holds the housekeeping lock, a round is skipped (None) and deletes nothing."""
    pool = await db.create_pool(fresh_db, max_size=2)
    other = await asyncpg.connect(fresh_db)
    try:
        async with pool.acquire() as conn:
            await _fill(conn, expired=2, live=0)
        async with other.transaction():
            assert await meta.try_round_lock(other, housekeeping.LOCK)
            assert await housekeeping.run_round(pool, SETTINGS) is None
            async with pool.acquire() as conn:
                assert (await _counts(conn))["sessions"] == 2
        assert (await housekeeping.run_round(pool, SETTINGS))["sessions"] == 2  # type: ignore[index]
    finally:
        await other.close()
        await pool.close()


async def test_a_round_held_in_another_database_does_not_skip_this_ones(fresh_db, pg_admin_url):
    """Two forums on one PostgreSQL server: while the other database's round is held, this one's still runs."""
    elsewhere = create_database(pg_admin_url)
    pool = await db.create_pool(fresh_db, max_size=2)
    other = await asyncpg.connect(elsewhere)
    try:
        async with pool.acquire() as conn:
            await _fill(conn, expired=2, live=0)
        async with other.transaction():
            assert await meta.try_round_lock(other, housekeeping.LOCK)
            assert (await housekeeping.run_round(pool, SETTINGS))["sessions"] == 2  # type: ignore[index]
    finally:
        await other.close()
        await pool.close()
        drop_database(pg_admin_url, elsewhere)


def test_a_running_server_prunes_by_itself_and_counts_it(fresh_db, spawn):
    """`parley serve` runs a round soon after start: expired sessions vanish and /metrics counts them."""
    async def fill() -> None:
        conn = await asyncpg.connect(fresh_db)
        try:
            await _fill(conn, expired=4, live=1)
        finally:
            await conn.close()
    asyncio.run(fill())
    proc = spawn(DATABASE_URL=fresh_db)
    deadline = time.time() + 30
    seen: dict[str, Any] = {}
    while time.time() < deadline:
        text = httpx.get(proc.url + "/metrics", timeout=5).text
        seen = {ln.split("{")[1].split("}")[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines()
                if ln.startswith("parley_pruned_rows_total{")}
        if seen.get('table="sessions"') == 4:
            break
        time.sleep(0.5)
    assert seen.get('table="sessions"') == 4 and seen.get('table="thread_events"') == 4, seen
    assert "housekeeping pruned" in proc.output()
