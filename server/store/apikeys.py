"""API keys: made with a token shown once and kept as its SHA-256 (sessions.key), listed, deleted; the user of a
token, touching last_used_at at most once a minute (one statement: it runs on every request made with a key)."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..errors import Conflict, NotFound
from ..wire import iso
from . import SessionsEnded, Written
from .sessions import key

MAX_KEYS = 50  # per user
FIELDS = "id, name, scopes, created_at, last_used_at"


def key_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "scopes": list(row["scopes"]), "created_at": iso(row["created_at"]),
            "last_used_at": iso(row["last_used_at"]) if row["last_used_at"] is not None else None}


async def create(conn: asyncpg.Connection, user_id: int, name: str, scopes: list[str], token: str) -> dict[str, Any]:
    """A new key of the user; 409 when they hold MAX_KEYS already (counted under the users row's lock)."""
    await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
    held = await conn.fetchval("SELECT count(*) FROM api_keys WHERE user_id = $1", user_id)
    if held >= MAX_KEYS:
        raise Conflict(f"You hold {MAX_KEYS} API keys already: delete one first", code="too_many_keys")
    row = await conn.fetchrow(
        f"INSERT INTO api_keys (user_id, name, scopes, token_hash) VALUES ($1, $2, $3, $4) RETURNING {FIELDS}",
        user_id, name, scopes, key(token))
    return key_dict(row)


async def listing(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {FIELDS} FROM api_keys WHERE user_id = $1 ORDER BY id DESC", user_id)
    return [key_dict(r) for r in rows]


async def delete(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, key_id: int) -> Written[None]:
    """Delete one of the user's keys: it stops working at once, and its sockets close (their session key is the
    token's hash)."""
    token_hash = await conn.fetchval("DELETE FROM api_keys WHERE id = $1 AND user_id = $2 RETURNING token_hash",
                                     key_id, user_id)
    if token_hash is None:
        raise NotFound(f"No API key {key_id}")
    return Written(None, sessions_ended=[SessionsEnded(user_id, only=token_hash)])


async def user_for(pool: asyncpg.Pool | asyncpg.Connection, token: str) -> asyncpg.Record | None:
    """The user of a key's token with the key's id and scopes (`api_key_id`, `api_key_scopes`), or None when no
    key has it or the user is suspended. last_used_at is written only when it is a minute old or unset."""
    return await pool.fetchrow(
        """
        WITH touched AS (
            UPDATE api_keys SET last_used_at = now()
            WHERE token_hash = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
            RETURNING id
        )
        SELECT u.*, k.id AS api_key_id, k.scopes AS api_key_scopes
        FROM api_keys k JOIN users u ON u.id = k.user_id
        WHERE k.token_hash = $1 AND (u.suspended_until IS NULL OR u.suspended_until <= now())
        """, key(token))

