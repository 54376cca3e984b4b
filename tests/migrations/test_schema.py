"""The migrations on an empty database: idempotent, safe to run twice and by two connections at once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from server import migrations

TABLES = {"users", "sessions", "categories", "threads", "posts", "post_revisions", "votes", "thread_events",
          "idempotency_keys"}


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()


def test_schema_applies_to_an_empty_database_and_again(empty_db):
    """Applying the schema twice in a row succeeds and creates every table once."""
    asyncio.run(_migrate(empty_db))
    asyncio.run(_migrate(empty_db))
    assert TABLES <= asyncio.run(_tables(empty_db))


def test_schema_applied_concurrently_by_two_connections(empty_db):
    """Two connections migrating the same empty database at the same moment both succeed (advisory lock)."""
    async def both() -> None:
        await asyncio.gather(*(_migrate(empty_db) for _ in range(4)))
    asyncio.run(both())
    assert TABLES <= asyncio.run(_tables(empty_db))


def test_migrating_again_keeps_the_data(fresh_db):
    """Re-applying the schema to a database with data changes nothing in it."""
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(fresh_db)
        try:
            await conn.execute("INSERT INTO users (username, display_name, password_hash) VALUES ('keep', 'K', 'x')")
            await migrations.migrate(conn)
            await migrations.migrate(conn)
            return await conn.fetch("SELECT username FROM users")
        finally:
            await conn.close()
    assert [r["username"] for r in asyncio.run(run())] == ["keep"]


def test_usernames_are_unique_case_insensitively_in_the_schema(fresh_db):
    """The schema itself refuses two usernames differing only in case."""
    async def run() -> None:
        conn = await asyncpg.connect(fresh_db)
        try:
            await conn.execute("INSERT INTO users (username, display_name, password_hash) VALUES ('Zed', 'Z', 'x')")
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("INSERT INTO users (username, display_name, password_hash)"
                                   " VALUES ('zED', 'Z', 'x')")
        finally:
            await conn.close()
    asyncio.run(run())


def test_thread_events_key_is_thread_and_seq(fresh_db):
    """thread_events refuses a second event with the same (thread, seq): the gap-free guarantee's last line."""
    async def run() -> None:
        conn = await asyncpg.connect(fresh_db)
        try:
            uid = await conn.fetchval("INSERT INTO users (username, display_name, password_hash)"
                                      " VALUES ('ev', 'E', 'x') RETURNING id")
            cid = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('c', 'C') RETURNING id")
            tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title) VALUES ($1, $2, 't')"
                                      " RETURNING id", cid, uid)
            await conn.execute("INSERT INTO thread_events (thread_id, seq, name, data) VALUES ($1, 1, 'x', '{}')", tid)
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("INSERT INTO thread_events (thread_id, seq, name, data) VALUES ($1, 1, 'y', '{}')",
                                   tid)
        finally:
            await conn.close()
    asyncio.run(run())
