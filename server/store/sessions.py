"""Server-side sessions. The table holds a SHA-256 of the session id, so a
leaked database does not hand out live sessions.

A session works while its row exists, it was used within the idle limit, it was made at its user's
current credential epoch (users.credential_epoch, raised by a password change and a suspension in their
own transaction) and its user is not suspended. Every lookup (HTTP and the /ws handshake: user_for; the
hubs' sweep and the socket's second look: live_keys) checks all four in its one statement, and a session
is only ever made at the epoch its maker checked the password against (create), so no interleaving of a
sign-in with a password change or a suspension leaves a session that outlives the change
(docs/security.md, "Sessions racing a change")."""

from __future__ import annotations

import hashlib

import asyncpg


def key(session_id: str) -> str:
    """What the table (and the user channel) calls a session: the SHA-256 of its id."""
    return hashlib.sha256(session_id.encode()).hexdigest()


_key = key


# What makes the session x of the user u work (besides its row existing); $2 is the idle limit in seconds.
_LIVE = """x.last_seen_at > now() - make_interval(secs => $2) AND x.epoch = u.credential_epoch
           AND (u.suspended_until IS NULL OR u.suspended_until <= now())"""


async def create(conn: asyncpg.Connection | asyncpg.Pool, session_id: str, user_id: int, epoch: int) -> bool:
    """Make a session of the user at `epoch`: the credential epoch of the users row the caller checked the
    password (and the suspension) against. Makes nothing and answers False when that epoch has passed or the
    user is suspended by now.

    FOR SHARE on the users row: a password change or suspension whose UPDATE is in flight is waited for and
    its result seen (the row no longer matches); one that starts later waits for this transaction, and its
    DELETE of the user's sessions then sees this one. Lock order users → sessions, as in those writers (a
    caller that also deletes a session does it after this), so the two cannot deadlock."""
    made = await conn.fetchval(
        """
        INSERT INTO sessions (id, user_id, epoch)
        SELECT $1, u.id, u.credential_epoch FROM users u
        WHERE u.id = $2 AND u.credential_epoch = $3
          AND (u.suspended_until IS NULL OR u.suspended_until <= now())
        FOR SHARE
        RETURNING true
        """,
        _key(session_id), user_id, epoch)
    return made is not None


def _user_for_sql(versioned: bool) -> str:
    return f"""
        WITH s AS (
            UPDATE sessions SET last_seen_at = now()
            WHERE id = $1 AND last_seen_at > now() - make_interval(secs => $2)
              AND last_seen_at < now() - interval '5 minutes'
            RETURNING user_id
        )
        SELECT u.*{", u.xmin AS row_version" if versioned else ""} FROM sessions x JOIN users u ON u.id = x.user_id
        WHERE x.id = $1 AND {_LIVE}
        """


_USER_FOR = _user_for_sql(False)
_USER_FOR_VERSIONED = _user_for_sql(True)


async def user_for(pool: asyncpg.Pool, session_id: str, idle_days: float,
                   versioned: bool = False) -> asyncpg.Record | None:
    """The user of a live session, touching last_seen_at at most every five minutes; None if expired, revoked,
    made before the user's last password change or suspension, or the user is suspended. One statement: it
    runs on every request. `versioned`: the row also holds row_version, the users row's xmin read in the same
    snapshot (server/sessioncache.py: what the reply's statement checks the row against)."""
    return await pool.fetchrow(_USER_FOR_VERSIONED if versioned else _USER_FOR, _key(session_id), idle_days * 86400)


class StaleSession(Exception):
    """A guarded write found its cached session no longer live or its users row changed (guard_sql): it wrote
    nothing; the request runs again from a fresh lookup (server/sessioncache.py)."""


def guard_sql(key: str, version: str, idle_seconds: str) -> str:
    """SQL true while the session `key` is live by user_for's rule and its users row is still at `version` (the
    xmin a cached lookup read it at: any UPDATE of the row since gives another). Given the SQL of its three
    parameters; a NULL key is no guard (true). The reply's statement writes only while it holds
    (server/sessioncache.py)."""
    live = _LIVE.replace("$2", idle_seconds)
    return f"""({key}::text IS NULL OR EXISTS (
        SELECT 1 FROM sessions x JOIN users u ON u.id = x.user_id
        WHERE x.id = {key}::text AND u.xmin = {version}::text::xid AND {live}))"""


async def guard_holds(conn: asyncpg.Connection, key: str, version: int, idle_seconds: float) -> bool:
    """Whether a cached session still holds (guard_sql, as its own statement: why a guarded write wrote nothing)."""
    return bool(await conn.fetchval(f"SELECT {guard_sql('$1', '$2', '$3')}", key, str(version), idle_seconds))


async def revoke(conn: asyncpg.Connection | asyncpg.Pool, session_id: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE id = $1", _key(session_id))


async def revoke_all(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, keep: str | None = None) -> None:
    await conn.execute("DELETE FROM sessions WHERE user_id = $1 AND id IS DISTINCT FROM $2",
                       user_id, _key(keep) if keep else None)


async def live_keys(pool: asyncpg.Pool, keys: list[str], idle_days: float) -> set[str]:
    """Those of `keys` that are live sessions, by the same rule as user_for (not revoked, not idle too long,
    at the user's current epoch, the user not suspended), or API keys still working (a socket opened with a
    key has the token's hash as its session key: store/apikeys.py)."""
    rows = await pool.fetch(f"""
        SELECT x.id FROM sessions x JOIN users u ON u.id = x.user_id WHERE x.id = any($1::text[]) AND {_LIVE}
        UNION ALL
        SELECT k.token_hash FROM api_keys k JOIN users u ON u.id = k.user_id
        WHERE k.token_hash = any($1::text[]) AND (u.suspended_until IS NULL OR u.suspended_until <= now())
        """, keys, idle_days * 86400)
    return {r["id"] for r in rows}
