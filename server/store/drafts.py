"""Drafts: what a person is writing, per user and key, with a compare-and-set revision (CONTRACT rev. 3
"Drafts and transports"; docs/api.md "Drafts"). Every change returns a Written whose user frame reaches every
socket of the writer (effects.after_commit); a post that succeeds deletes its draft through `discard()`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import asyncpg

from .. import limits, wire
from ..errors import Conflict
from . import Written

# ask, thread:ID (a response to the thread), comment:ID (a comment under the response), edit:ID (the post's edit).
# The same rule is the table's CHECK (migration drafts).
KEY = re.compile(r"(ask|(thread|comment|edit):[1-9][0-9]{0,18})")
FIELDS = "key, body, revision, updated_at"


class DraftConflict(Conflict):
    """409 of a PUT whose revision is not the current one: the body adds `draft`, the current one (null: none)."""

    code = "draft_changed"

    def __init__(self, current: dict[str, Any] | None) -> None:
        super().__init__("The draft changed elsewhere; its current revision is in `draft`")
        self.current = current

    def body(self) -> dict[str, Any]:
        return {**super().body(), "draft": self.current}


def key(kind: str, id_: int) -> str:
    """The key of a draft about a thread ("thread": its response), a response ("comment") or a post ("edit")."""
    return f"{kind}:{id_}"


def valid_key(key: str) -> bool:
    return KEY.fullmatch(key) is not None and int(key.partition(":")[2] or 1) <= limits.BIGINT


def draft_dict(row: asyncpg.Record) -> dict[str, Any]:
    return {"key": row["key"], "body": row["body"], "revision": row["revision"], "updated_at": iso(row["updated_at"])}


def iso(ts: datetime) -> str:
    return wire.iso(ts) or ""


async def listing(pool: asyncpg.Pool | asyncpg.Connection, user_id: int) -> list[dict[str, Any]]:
    """The user's drafts, the most recently changed first."""
    rows = await pool.fetch(f"SELECT {FIELDS} FROM drafts WHERE user_id = $1 ORDER BY updated_at DESC, key",
                            user_id)
    return [draft_dict(r) for r in rows]


async def put(conn: asyncpg.Connection, user_id: int, key: str, body: str,
              revision: int | None) -> Written[dict[str, Any]]:
    """Write the draft. `revision` given: only if it is the current one (0: only if there is none), else 409
    with the current draft. A user's draft writes take their users row (FOR NO KEY UPDATE: posts referring to
    the user are not blocked), so two first saves of one key cannot both pass a check of revision 0, and the
    DRAFTS_MAX count holds."""
    async with conn.transaction():
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", user_id)
        current = await conn.fetchrow(f"SELECT {FIELDS} FROM drafts WHERE user_id = $1 AND key = $2", user_id, key)
        if revision is not None and revision != (current["revision"] if current is not None else 0):
            raise DraftConflict(draft_dict(current) if current is not None else None)
        if current is None:
            held = await conn.fetchval("SELECT count(*) FROM drafts WHERE user_id = $1", user_id)
            if held >= limits.DRAFTS_MAX:
                raise Conflict(f"You keep {limits.DRAFTS_MAX} drafts already: post or discard one first",
                               code="too_many_drafts")
            row = await conn.fetchrow(f"INSERT INTO drafts (user_id, key, body) VALUES ($1, $2, $3)"
                                      f" RETURNING {FIELDS}", user_id, key, body)
        else:
            row = await conn.fetchrow(f"UPDATE drafts SET body = $3, revision = revision + 1, updated_at = now()"
                                      f" WHERE user_id = $1 AND key = $2 RETURNING {FIELDS}", user_id, key, body)
    draft = draft_dict(row)
    return Written(draft, user_frames=[(user_id, wire.draft(draft))])


async def discard(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, key: str) -> Written[bool]:
    """Delete the draft (DELETE, or the post that sent it): whether there was one. Its deletion reaches the
    user's sockets as the draft with `"body": null` and the next revision."""
    row = await conn.fetchrow("DELETE FROM drafts WHERE user_id = $1 AND key = $2 RETURNING revision", user_id, key)
    return discarded(user_id, key, row["revision"] if row is not None else None)


def discarded(user_id: int, key: str, revision: int | None) -> Written[bool]:
    """What discarding the draft `key` that was at `revision` caused (None: there was none). A new reply
    deletes its draft in its own statement (store/posts.py, _create_sql: `dr`) and answers this the same way."""
    if revision is None:
        return Written(False)
    gone = {"key": key, "body": None, "revision": revision + 1, "updated_at": iso(datetime.now(UTC))}
    return Written(True, user_frames=[(user_id, wire.draft(gone))])
