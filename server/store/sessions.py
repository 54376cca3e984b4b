"""Server-side sessions. The table holds a SHA-256 of the session id, so a
leaked database does not hand out live sessions."""

from __future__ import annotations

import hashlib

import asyncpg


def key(session_id: str) -> str:
    """What the table (and the user channel) calls a session: the SHA-256 of its id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


_key = key


async def create(conn: asyncpg.Connection | asyncpg.Pool, session_id: str, user_id: int) -> None:
    await conn.execute("INSERT INTO sessions (id, user_id) VALUES ($1, $2)", _key(session_id), user_id)


async def user_for(pool: asyncpg.Pool, session_id: str, idle_days: float) -> asyncpg.Record | None:
    """The user of a live session, touching last_seen_at at most every five minutes; None if expired or revoked."""
    return await pool.fetchrow(
        """
        WITH s AS (
            UPDATE sessions SET last_seen_at = now()
            WHERE id = $1 AND last_seen_at > now() - make_interval(secs => $2)
              AND last_seen_at < now() - interval '5 minutes'
            RETURNING user_id
        )
        SELECT u.* FROM sessions x JOIN users u ON u.id = x.user_id
        WHERE x.id = $1 AND x.last_seen_at > now() - make_interval(secs => $2)
        """,
        _key(session_id), idle_days * 86400)


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, session_id: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE id = $1", _key(session_id))


async def revoke_all(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, keep: str | None = None) -> None:
    await conn.execute("DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2",
                       user_id, _key(keep) if keep else None)


async def live_keys(pool: asyncpg.Pool, keys: list[str], idle_days: float) -> set[str]:
    """Those of `keys` that are live sessions (not revoked, not idle too long)."""
    rows = await pool.fetch("SELECT id FROM sessions WHERE id = any($1::text[])"
                            " AND last_seen_at > now() - make_interval(secs => $2)", keys, idle_days * 86400)
    return {r["id"] for r in rows}
