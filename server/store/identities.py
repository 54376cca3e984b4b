"""Single sign-on identities (issuer, subject) → users, and the accounts they make (CONTRACT "Single sign-on")."""

from __future__ import annotations

import re

import asyncpg

from .. import limits
from . import users

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def username_base(preferred: str | None, email: str | None) -> str:
    """A valid username from the provider's preferred_username (or the e-mail's local part): characters outside
    the username's alphabet dropped, cut to leave room for a number, padded when too short."""
    raw = preferred or (email or "").split("@", 1)[0] or "member"
    name = _NOT_NAME.sub("", raw)[: limits.USERNAME_MAX - 6].strip(".-") or "member"
    if users.DELETED_NAME.fullmatch(name):
        name = "member"
    while len(name) < limits.USERNAME_MIN:
        name += "_"
    return name


async def user_of(conn: asyncpg.Connection | asyncpg.Pool, issuer: str, subject: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT u.* FROM oidc_identities i JOIN users u ON u.id = i.user_id"
        " WHERE i.issuer = $1 AND i.subject = $2 AND u.deleted_at IS NULL", issuer, subject)


async def by_verified_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    """The live account whose verified address this is (any case)."""
    return await conn.fetchrow("SELECT * FROM users WHERE email_verified AND lower(email) = lower($1)"
                               " AND deleted_at IS NULL FOR UPDATE", email)


async def link(conn: asyncpg.Connection, issuer: str, subject: str, user_id: int) -> None:
    await conn.execute("INSERT INTO oidc_identities (issuer, subject, user_id) VALUES ($1, $2, $3)",
                       issuer, subject, user_id)


async def create_user(conn: asyncpg.Connection, base: str, display_name: str,
                      email: str | None) -> asyncpg.Record:
    """A new account with no password (it signs in through the provider): `base`, or base2, base3 … the first
    that is free; the address set and verified when given (the provider verified it and no account has it)."""
    taken = {r["name"] for r in await conn.fetch(
        "SELECT lower(username) AS name FROM users WHERE lower(username) LIKE lower($1) || '%'", base)}
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base}{n}"
    row = await users.create(conn, name, display_name, "")
    if email is not None:
        row = await conn.fetchrow("UPDATE users SET email = $2, email_verified = true WHERE id = $1 RETURNING *",
                                  row["id"], email)
    return row
