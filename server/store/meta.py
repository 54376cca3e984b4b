"""The forum's own records: its deployment id (parley_meta), and the readiness probe's read."""

from __future__ import annotations

import asyncpg


async def deployment(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    """This forum's id, made by the first migration: the namespace of everything it puts in Redis."""
    return await conn.fetchval("SELECT value FROM parley_meta WHERE key = 'deployment'")  # type: ignore[no-any-return]


async def ping(pool: asyncpg.Pool, timeout: float) -> None:
    """One round trip to the database (raises when it does not answer in `timeout` seconds)."""
    await pool.fetchval("SELECT 1", timeout=timeout)


# Advisory locks belong to the whole PostgreSQL server, not to one database: a lock keyed by a constant alone
# would make two forums on one server skip each other's rounds. A round lock is keyed by this database's oid
# and the round's kind (each an int4, PostgreSQL's two-key form).
ROUND_LOCK = ("SELECT pg_try_advisory_xact_lock("
              "(SELECT (oid::bigint % 2147483647)::int FROM pg_database WHERE datname = current_database()), $1)")


async def try_round_lock(conn: asyncpg.Connection, kind: int) -> bool:
    """Whether this transaction now holds round `kind` of this database (another process has it: False)."""
    return bool(await conn.fetchval(ROUND_LOCK, kind))
