"""Users' e-mail: the address and its verification, single-use tokens, preferences, one-click unsubscribe
(CONTRACT "E-mail"; docs/api.md "E-mail").

Tokens are 256-bit random strings kept only as their SHA-256 (email_tokens.hash). Taking one is one
UPDATE … RETURNING that marks it used, so of two requests with the same token exactly one gets it; a
caller that then refuses (the address changed meanwhile) rolls its transaction back and the token stays
unused. A reset token is bound to the credential epoch it was made at: any password change or reset
(which raises the epoch) kills the others.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import asyncpg

from ..errors import Conflict, Invalid
from ..outbox import keys
from ..outbox.compose import Composer
from . import Written, outbox

# How long a token works (CONTRACT: a reset token one hour).
TOKEN_SECONDS = {"verify": 7 * 86400, "reset": 3600}
PREFERENCES = {"email_notifications": ("always", "away", "never"), "digest": ("off", "daily", "weekly")}


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def preferences(row: asyncpg.Record | dict[str, Any]) -> dict[str, str]:
    return {"email_notifications": row["email_notifications"], "digest": row["digest"]}


async def taken(conn: asyncpg.Connection | asyncpg.Pool, email: str, user_id: int | None) -> bool:
    """Whether another account has verified this address (any case)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1) AND email_verified AND id <> $2)",
        email, user_id or 0))


def _taken() -> Conflict:
    return Conflict("Another account has verified that address", code="email_taken", field="email")


async def set_address(conn: asyncpg.Connection, user_id: int, email: str | None) -> asyncpg.Record:
    """Set (unverified) or remove the user's address; the same address already verified stays verified.
    409 email_taken when another account has verified it. Answers the users row."""
    if email is not None and await taken(conn, email, user_id):
        raise _taken()
    return await conn.fetchrow(
        "UPDATE users SET email = $2, email_verified = email_verified AND email IS NOT DISTINCT FROM $2"
        " WHERE id = $1 RETURNING *", user_id, email)


async def new_token(conn: asyncpg.Connection, user: asyncpg.Record, purpose: str, email: str) -> str:
    """A fresh token for `purpose` (verify, reset) sent to `email`; returns the token itself (for the mail),
    keeping only its hash."""
    token = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO email_tokens (hash, user_id, purpose, email, epoch, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
        token_hash(token), user["id"], purpose, email, user["credential_epoch"], TOKEN_SECONDS[purpose])
    return token


async def take_token(conn: asyncpg.Connection, token: str, purpose: str) -> asyncpg.Record:
    """Use a token once: the users row it belongs to, with the token's `token_email` and `token_epoch`.
    422 field token when it is unknown, used, expired or for another purpose."""
    row = await conn.fetchrow(
        """
        WITH t AS (
            UPDATE email_tokens SET used_at = now()
            WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
            RETURNING user_id, email, epoch
        )
        SELECT u.*, t.email AS token_email, t.epoch AS token_epoch FROM t JOIN users u ON u.id = t.user_id
        """, token_hash(token), purpose)
    if row is None:
        raise bad_token()
    return row


def bad_token() -> Invalid:
    return Invalid("This link is not valid: it was used already, has expired, or is not one of ours",
                   field="token")


async def verify(conn: asyncpg.Connection, token: str) -> asyncpg.Record:
    """Verify the address a verification token was sent to, if it is still the user's: the users row."""
    row = await take_token(conn, token, "verify")
    if row["email"] is None or row["email"].lower() != row["token_email"].lower():
        raise bad_token()  # the address changed since this mail was sent
    if row["email_verified"]:
        return row
    try:
        return await conn.fetchrow("UPDATE users SET email_verified = true WHERE id = $1 RETURNING *", row["id"])
    except asyncpg.UniqueViolationError:
        raise _taken() from None


async def by_verified_address(conn: asyncpg.Connection | asyncpg.Pool, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM users WHERE lower(email) = lower($1) AND email_verified", email)


async def take_reset(conn: asyncpg.Connection, token: str) -> asyncpg.Record:
    """The user a reset token is for, if the token is good and nothing changed since it was sent (the
    password: the credential epoch; the address: still theirs and verified)."""
    row = await take_token(conn, token, "reset")
    if (row["credential_epoch"] != row["token_epoch"] or not row["email_verified"]
            or (row["email"] or "").lower() != row["token_email"].lower()):
        raise bad_token()
    return row


async def set_preferences(conn: asyncpg.Connection | asyncpg.Pool, user_id: int,
                          changes: dict[str, str]) -> dict[str, str]:
    row = await conn.fetchrow(
        "UPDATE users SET email_notifications = coalesce($2, email_notifications), digest = coalesce($3, digest)"
        " WHERE id = $1 RETURNING email_notifications, digest",
        user_id, changes.get("email_notifications"), changes.get("digest"))
    return preferences(row)


async def unsubscribe(conn: asyncpg.Connection | asyncpg.Pool, secret: str, token: str) -> dict[str, str] | None:
    """Use a one-click unsubscribe token: the list's preference off (notifications `never`, digest `off`) and
    the user's unsubscribe epoch raised (the token, and every other link signed at that epoch, is used up).
    None when the token is not a good one."""
    parsed = keys.parse_unsubscribe(token)
    if parsed is None:
        return None
    user_id, list_, sig = parsed
    epoch = await conn.fetchval("SELECT unsubscribe_epoch FROM users WHERE id = $1", user_id)
    if epoch is None or not keys.unsubscribe_ok(secret, user_id, list_, epoch, sig):
        return None
    row = await conn.fetchrow(
        "UPDATE users SET unsubscribe_epoch = unsubscribe_epoch + 1,"
        " email_notifications = CASE WHEN $3 = 'n' THEN 'never' ELSE email_notifications END,"
        " digest = CASE WHEN $3 = 'd' THEN 'off' ELSE digest END"
        " WHERE id = $1 AND unsubscribe_epoch = $2 RETURNING email_notifications, digest",
        user_id, epoch, list_)
    return preferences(row) if row is not None else None


async def unsubscribe_valid(conn: asyncpg.Connection | asyncpg.Pool, secret: str, token: str) -> bool:
    """Whether a one-click token would work (for the page a GET shows; it changes nothing)."""
    parsed = keys.parse_unsubscribe(token)
    if parsed is None:
        return False
    user_id, list_, sig = parsed
    epoch = await conn.fetchval("SELECT unsubscribe_epoch FROM users WHERE id = $1", user_id)
    return epoch is not None and keys.unsubscribe_ok(secret, user_id, list_, epoch, sig)


async def send_verification(conn: asyncpg.Connection, composer: Composer, user: asyncpg.Record) -> Written[None]:
    """Queue a verification mail to the user's (unverified) address, in the caller's transaction."""
    token = await new_token(conn, user, "verify", user["email"])
    await outbox.enqueue(conn, composer.verify(user["email"], dict(user), token), user["id"])
    return Written(None, mail_queued=["verify"])


async def send_reset(conn: asyncpg.Connection, composer: Composer, user: asyncpg.Record) -> Written[None]:
    """Queue a password-reset mail to the user's verified address, in the caller's transaction."""
    token = await new_token(conn, user, "reset", user["email"])
    await outbox.enqueue(conn, composer.reset(user["email"], dict(user), token), user["id"])
    return Written(None, mail_queued=["reset"])
