"""Users: accounts, briefs, lookups."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import asyncpg

from .. import limits
from ..errors import Conflict
from ..wire import iso

BRIEF_COLUMNS = "id, username, display_name, avatar_url"

# The names deleted accounts take (store/leaving.py): nobody else may take one.
DELETED_NAME = re.compile(r"deleted-user-[0-9]+", re.IGNORECASE)

# The one copy of the username rule (CONTRACT "Limits"); always used with fullmatch, so "ada\n" is no username.
USERNAME = re.compile(limits.USERNAME_PATTERN)


def valid_username(name: str) -> bool:
    return USERNAME.fullmatch(name) is not None


def canonical(name: str) -> str:
    """The one form in which usernames are compared: sign-in, uniqueness (the lower(username) index),
    rate-limit keys, mentions.

    A valid username is ASCII, so its ASCII lowercase is exactly what PostgreSQL's lower() makes of it
    in any locale. Anything else can never be a username: it maps to a form no user has ("!" prefix),
    so a name such as "dmİtri" (which lower() in some locales folds to "dmitri") matches nobody.
    """
    if valid_username(name):
        return name.lower()
    return "!" + name.casefold()[:64]


def skeleton(name: str) -> str:
    """The form in which a display name is compared with moderators' names: NFKC (fullwidth and other
    compatibility forms become plain letters), casefolded, letters and digits only ("Mod Team", "ＭＯＤ-team"
    and "modteam" are one). Look-alikes across scripts (Cyrillic а for Latin a) are not caught: the page
    shows @username beside every name in posts and Active Now for that."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", name).casefold() if ch.isalnum())


async def moderator_copied(conn: asyncpg.Connection | asyncpg.Pool, name: str) -> str | None:
    """The username of a moderator whose display name or username `name` copies (same skeleton), or None."""
    target = skeleton(name)
    if not target:
        return None
    for row in await conn.fetch("SELECT username, display_name FROM users WHERE is_moderator"):
        if target in (skeleton(row["display_name"]), skeleton(row["username"])):
            return row["username"]  # type: ignore[no-any-return]
    return None


# The contract's User brief, declared once: its keys, each a column of users. brief() builds it from a row
# in Python, brief_sql() in SQL (for a statement that stores an event's JSON itself, store/posts.py), and
# brief_columns() selects what brief() reads. A key added here reaches every brief in both.
BRIEF = ("id", "username", "display_name", "avatar_url")


def brief(row: asyncpg.Record | dict[str, Any] | None, prefix: str = "") -> dict[str, Any] | None:
    """A User brief from a row (columns optionally prefixed, e.g. author_id/author_username)."""
    if row is None or row[f"{prefix}id"] is None:
        return None
    return {key: row[f"{prefix}{key}"] for key in BRIEF}


def brief_of(row: asyncpg.Record | dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """brief() of a row that surely names a user (an author, an actor), never None."""
    return {key: row[f"{prefix}{key}"] for key in BRIEF}


def brief_columns(alias: str, prefix: str = "") -> str:
    """SQL select-list of the columns brief(row, prefix) reads, from the users row `alias`."""
    return ", ".join(f"{alias}.{key} AS {prefix}{key}" for key in BRIEF)


def brief_sql(alias: str) -> str:
    """SQL (jsonb) of the User brief of the users row `alias`; null when the row is absent (a LEFT JOIN)."""
    pairs = ", ".join(f"'{key}', {alias}.{key}" for key in BRIEF)
    return f"CASE WHEN {alias}.id IS NULL THEN NULL ELSE jsonb_build_object({pairs}) END"


def public(row: asyncpg.Record) -> dict[str, Any]:
    """A full user as others see it (a Profile's base): never the address."""
    return {"id": row["id"], "username": row["username"], "display_name": row["display_name"],
            "avatar_url": row["avatar_url"], "is_moderator": row["is_moderator"], "created_at": iso(row["created_at"])}


def full(row: asyncpg.Record) -> dict[str, Any]:
    """A full user, the user's own view (/api/me, sign-up, sign-in): with the address and whether it is verified."""
    return {**public(row), "email": row["email"], "email_verified": row["email_verified"]}


async def create(conn: asyncpg.Connection | asyncpg.Pool, username: str, display_name: str,
                 password_hash: str, is_moderator: bool = False) -> asyncpg.Record:
    if DELETED_NAME.fullmatch(username):  # the names deleted accounts take (store/leaving.py)
        raise Conflict("That username is taken", code="username_taken", field="username")
    try:
        return await conn.fetchrow(
            "INSERT INTO users (username, display_name, password_hash, is_moderator)"
            " VALUES ($1, $2, $3, $4) RETURNING *",
            username, display_name, password_hash, is_moderator)
    except asyncpg.UniqueViolationError:
        raise Conflict("That username is taken", code="username_taken", field="username") from None


async def by_username(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> asyncpg.Record | None:
    """The user with this name in canonical form; None for any string that is not a valid username, and for a
    deleted account (its profile answers 404, it cannot sign in)."""
    if not valid_username(username):
        return None
    return await conn.fetchrow("SELECT * FROM users WHERE lower(username) = $1 AND deleted_at IS NULL",
                               canonical(username))


async def by_id(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)


async def briefs(conn: asyncpg.Connection | asyncpg.Pool, ids: list[int]) -> dict[int, dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {BRIEF_COLUMNS} FROM users WHERE id = any($1::bigint[])", ids)
    return {r["id"]: brief(r) for r in rows}  # type: ignore[misc]


async def change_password(conn: asyncpg.Connection, user_id: int, epoch: int, password_hash: str) -> int | None:
    """Set a new password and raise the user's credential epoch (every session made before is dead from
    this transaction's COMMIT on), if the epoch is still `epoch`, the one of the session that proved who
    they are. Answers the new epoch, or None when the epoch has moved on (that session has ended)."""
    return await conn.fetchval(
        "UPDATE users SET password_hash = $3, password_changed_at = now(), credential_epoch = credential_epoch + 1"
        " WHERE id = $1 AND credential_epoch = $2 RETURNING credential_epoch", user_id, epoch, password_hash)


async def set_password(conn: asyncpg.Connection, user_id: int, password_hash: str) -> int | None:
    """An operator sets the password (`parley user passwd`): whatever the epoch, it is raised, so every
    session of the user ends. Answers the new epoch, or None when there is no such user."""
    return await conn.fetchval(
        "UPDATE users SET password_hash = $2, password_changed_at = now(), credential_epoch = credential_epoch + 1"
        " WHERE id = $1 RETURNING credential_epoch", user_id, password_hash)


async def rehash(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, old_hash: str, new_hash: str) -> None:
    """Store the same password hashed with today's parameters, unless the hash changed meanwhile (a password
    change between reading the user and here must not be undone). Not a change: the epoch stays."""
    await conn.execute("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
                       user_id, old_hash, new_hash)


async def count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return await conn.fetchval("SELECT count(*) FROM users")


def suspended(row: asyncpg.Record) -> bool:
    """Whether the user is suspended now (a suspension ends by itself at its time)."""
    until = row["suspended_until"]
    return until is not None and until > datetime.now(UTC)


async def suspend(conn: asyncpg.Connection, user_id: int, until: datetime | None, reason: str | None) -> int:
    """Set or lift (until=None) a suspension; the caller ends the user's sessions and logs it. Setting one
    raises the credential epoch in the same statement, so no session made before it works again, even once
    it is lifted (store/sessions.py). Answers the user's epoch afterwards."""
    return await conn.fetchval(
        "UPDATE users SET suspended_until = $2, suspension_reason = $3,"
        " credential_epoch = credential_epoch + CASE WHEN $2::timestamptz IS NULL THEN 0 ELSE 1 END"
        " WHERE id = $1 RETURNING credential_epoch",
        user_id, until, reason if until is not None else None)


async def moderator_ids(conn: asyncpg.Connection | asyncpg.Pool) -> list[int]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM users WHERE is_moderator")]


# Prefix search, any case, on username and display name: two index range scans (text_pattern_ops
# indexes of 0005), bounded by the prefix and the prefix followed by the last code point.
_BY_PREFIX = """
SELECT id, username, display_name, avatar_url FROM users
WHERE ((lower(username) ~>=~ lower($1) AND lower(username) ~<~ (lower($1) || chr(1114111)))
   OR (lower(display_name) ~>=~ lower($1) AND lower(display_name) ~<~ (lower($1) || chr(1114111))))
  AND deleted_at IS NULL
ORDER BY lower(username) = lower($1) DESC, lower(username) LIMIT $2
"""


async def by_prefix(conn: asyncpg.Connection | asyncpg.Pool, prefix: str, limit: int) -> list[asyncpg.Record]:
    """Users whose username or display name starts with `prefix` (any case), an exact username first."""
    return list(await conn.fetch(_BY_PREFIX, prefix, limit))
