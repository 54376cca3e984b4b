"""Where the primary's write-ahead log is, and how far a streaming replica has replayed it (server/replicas.py).

LSNs are returned as byte offsets (int), so they compare with < and travel in a cookie as a number."""

from __future__ import annotations

import asyncpg


async def primary_lsn(pool: asyncpg.Pool) -> int:
    """The primary's WAL write position now: past the commit of every transaction that has returned."""
    return int(await pool.fetchval("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"))


async def replica_position(conn: asyncpg.Connection) -> tuple[bool, int | None]:
    """(in recovery, replayed up to): a promoted server says (False, None); a replica its last replayed LSN."""
    row = await conn.fetchrow(
        "SELECT pg_is_in_recovery() AS standby, (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed")
    assert row is not None
    return bool(row["standby"]), (int(row["replayed"]) if row["replayed"] is not None else None)
