"""The forum's own records: its deployment id (parley_meta), and the readiness probe's read."""

from __future__ import annotations

import asyncpg


async def deployment(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    """This forum's id, made by the first migration: the namespace of everything it puts in Redis."""
    return await conn.fetchval("SELECT value FROM parley_meta WHERE key = 'deployment'")  # type: ignore[no-any-return]


async def ping(pool: asyncpg.Pool, timeout: float) -> None:
    """One round trip to the database (raises when it does not answer in `timeout` seconds)."""
    await pool.fetchval("SELECT 1", timeout=timeout)
