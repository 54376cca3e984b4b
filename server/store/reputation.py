"""Reputation (CONTRACT rev. 3 "Trust and spam"; docs/moderation.md "Reputation"): a ledger and its sum.

users.reputation is a maintained sum: 1 + the user's rows in reputation_events, never below 1. The rule lives
once, in SQL (migration 0016_trust): the view reputation_sources lists a user's live sources (votes on their live
questions and responses, the acceptance of their live response, their own acceptance of an answer) and the
aggregate parley_reputation() replays them oldest first (+10 / +5 / -2, +15, +2; what votes earn capped at 200
per UTC day; a loss clipped at 1). So the sum is always what a recount from scratch gives:

- a new vote is the newest source: one step of the same rule on the current sum (`vote_added`);
- anything that takes a source away or changes it (an unvote, a changed vote, an acceptance moved or withdrawn,
  a deleted post or thread) recounts the users it touches (`recount`).

Every change runs in the caller's transaction, under the user's row lock (taken after the thread's lock, users
in id order: no deadlock with the thread-ordered writes), and the source's time is stamped under that lock, so
the order the rule replays is the order the changes were made. A change that happened is one ledger row (none
for a change of 0: a vote past the daily cap, a loss at 1) and one `reputation` frame to the user's sockets.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from ..wire import iso, reputation_frame
from .cursor import cursor_decode, cursor_encode

REASONS = ("vote_up", "vote_down", "vote_undone", "vote_changed", "accepted", "accept_undone", "accepter",
           "accepter_undone", "post_deleted", "recount")
EARNING_KINDS = ("question", "response")  # comments earn nothing
# A recount's reason names the gain; a loss for the same cause is recorded as its undoing.
LOSS = {"accepted": "accept_undone", "accepter": "accepter_undone", "vote_changed": "vote_changed",
        "vote_undone": "vote_undone", "post_deleted": "post_deleted"}

RECOUNT = """
SELECT coalesce((parley_reputation(kind, amount, at ORDER BY at, kind, post_id, actor_id))[1], 1)
FROM reputation_sources WHERE user_id = $1
"""

# A new vote ($2 post, $3 voter), the newest source of $1: one step on the sum $4, with what votes earned that
# day before it. (The day's earnings in a replay are min(200, the day's up votes), whatever came between.)
_DAY = "floor(extract(epoch FROM {}) / 86400)::integer"
VOTE_STEP = f"""
WITH v AS (SELECT created_at AS at FROM votes WHERE post_id = $2 AND user_id = $3),
e AS (
    SELECT least(200, coalesce(sum(s.amount), 0))::integer AS earned FROM reputation_sources s, v
    WHERE s.user_id = $1 AND s.kind = 'vote_up' AND {_DAY.format("s.at")} = {_DAY.format("v.at")}
      AND NOT (s.post_id = $2 AND s.actor_id = $3)
)
SELECT (parley_reputation_step(ARRAY[$4::integer, {_DAY.format("v.at")}, e.earned], $5, $6, v.at))[1]
FROM v, e
"""

Frames = list[tuple[int, bytes]]


async def lock(conn: asyncpg.Connection, user_ids: set[int] | list[int]) -> dict[int, int]:
    """Lock the users' rows (in id order) and read their reputation."""
    rows = await conn.fetch("SELECT id, reputation FROM users WHERE id = any($1::bigint[]) ORDER BY id FOR UPDATE",
                            sorted(set(user_ids)))
    return {r["id"]: r["reputation"] for r in rows}


async def _record(conn: asyncpg.Connection, user_id: int, old: int, new: int, reason: str,
                  post_id: int | None) -> Frames:
    """Store a change that happened (none when it is 0) and make its frame for the user's sockets."""
    if new == old:
        return []
    if new < old:
        reason = LOSS.get(reason, reason)
    if reason not in REASONS:
        raise RuntimeError(f"unknown reputation reason {reason!r}")
    await conn.execute("UPDATE users SET reputation = $2 WHERE id = $1", user_id, new)
    row = await conn.fetchrow("INSERT INTO reputation_events (user_id, delta, reason, post_id) VALUES ($1, $2, $3, $4)"
                              " RETURNING created_at", user_id, new - old, reason, post_id)
    event = {"delta": new - old, "reason": reason, "post_id": post_id, "created_at": iso(row["created_at"])}
    return [(user_id, reputation_frame(new, event))]


async def stamp_vote(conn: asyncpg.Connection, post_id: int, voter_id: int, value: int) -> None:
    """Write the voter's vote (value ±1), stamped now: call it holding the author's lock (`lock`)."""
    await conn.execute(
        "INSERT INTO votes (post_id, user_id, value, created_at) VALUES ($1, $2, $3, clock_timestamp())"
        " ON CONFLICT (post_id, user_id) DO UPDATE SET value = EXCLUDED.value, created_at = EXCLUDED.created_at",
        post_id, voter_id, value)


async def vote_added(conn: asyncpg.Connection, author_id: int, current: int, post_id: int, voter_id: int,
                     post_kind: str, value: int) -> Frames:
    """The author's change for a new vote (no earlier vote by this voter on this post), already stamped."""
    amount = -2 if value < 0 else 5 if post_kind == "question" else 10
    kind = "vote_up" if value > 0 else "vote_down"
    new = await conn.fetchval(VOTE_STEP, author_id, post_id, voter_id, current, kind, amount)
    return await _record(conn, author_id, current, new, kind, post_id)


async def recount(conn: asyncpg.Connection, reasons: dict[int, str], post_id: int | None,
                  locked: dict[int, int] | None = None) -> Frames:
    """Recount each user of `reasons` (user id → the reason their change is recorded with) from their live
    sources, after the write that changed them; locks them first unless the caller did (`locked`)."""
    current = locked if locked is not None else await lock(conn, list(reasons))
    frames: Frames = []
    for user_id in sorted(reasons):
        if user_id in current:
            new = await conn.fetchval(RECOUNT, user_id)
            frames += await _record(conn, user_id, current[user_id], new, reasons[user_id], post_id)
    return frames


async def touched_by_post(conn: asyncpg.Connection, post_id: int) -> set[int]:
    """The users whose reputation a post's deletion may change: its author, and its thread's asker when the post
    is the accepted response; for a question (its thread goes), everyone with a source in the thread."""
    row = await conn.fetchrow("SELECT p.kind, p.author_id, p.thread_id, t.author_id AS asker, t.accepted_id"
                              " FROM posts p JOIN threads t ON t.id = p.thread_id WHERE p.id = $1", post_id)
    if row is None:
        return set()
    if row["kind"] == "question":
        ids = await conn.fetch("SELECT DISTINCT author_id FROM posts WHERE thread_id = $1", row["thread_id"])
        return {r["author_id"] for r in ids} | {row["asker"]}
    if row["accepted_id"] == post_id:
        return {row["author_id"], row["asker"]}
    return {row["author_id"]}


async def locked_for_post(conn: asyncpg.Connection, post_id: int) -> dict[int, int]:
    """`touched_by_post`, locked (`lock`): call it holding the thread's lock, before the post goes."""
    return await lock(conn, await touched_by_post(conn, post_id))


async def ledger(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, limit: int,
                 before: str | None) -> dict[str, Any]:
    """{events, next}: the user's ledger, newest first."""
    before_id = cursor_decode(before, "before", (int,))[0] if before is not None else None
    rows = await conn.fetch(
        "SELECT id, delta, reason, post_id, created_at FROM reputation_events WHERE user_id = $1"
        f" {'AND id < $3' if before_id is not None else ''} ORDER BY id DESC LIMIT $2",
        user_id, limit + 1, *([before_id] if before_id is not None else []))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"events": [{"delta": r["delta"], "reason": r["reason"], "post_id": r["post_id"],
                        "created_at": iso(r["created_at"])} for r in rows],
            "next": cursor_encode(rows[-1]["id"]) if more else None}
