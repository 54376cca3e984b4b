"""Upgrade to the trust migration (0016_trust) on a database holding data: existing users start with the reputation
their existing votes and acceptances give them (one `recount` row each), computed by the migration; the live
rule then goes on from there."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from server import migrations
from server.store import posts, reputation

MINE = next(m.version for m in migrations.available() if m.name == "trust")


async def _fill_before(conn: asyncpg.Connection) -> dict[str, Any]:
    """At the version before: an asker, two answerers, three voters, a moderator; votes of every kind; two
    acceptances, one made by a moderator (its log entry says so); a deleted response with votes; a comment with a
    vote."""
    await migrations.migrate(conn, target=MINE - 1)
    ids = {name: await conn.fetchval("INSERT INTO users (username, display_name, password_hash, is_moderator)"
                                     " VALUES ($1, $1, 'x', $2) RETURNING id", name, name == "mod")
           for name in ("ask", "ann", "ben", "v1", "v2", "v3", "mod")}
    cat = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('old', 'Old') RETURNING id")

    async def thread(title: str) -> int:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "INSERT INTO threads (category_id, author_id, title, seq) VALUES ($1, $2, $3, 1) RETURNING id",
            cat, ids["ask"], title)

    async def post(tid: int, kind: str, author: str, parent: int | None = None, deleted: bool = False) -> int:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, seq, deleted)"
            " VALUES ($1, $2, $3, $4, 'b', '<p>b</p>', 1, $5) RETURNING id", tid, parent, kind, ids[author], deleted)

    t1, t2 = await thread("One"), await thread("Two")
    q1 = await post(t1, "question", "ask")
    await post(t2, "question", "ask")
    a1, b1 = await post(t1, "response", "ann"), await post(t1, "response", "ben")
    a2 = await post(t2, "response", "ann")
    gone = await post(t1, "response", "ben", deleted=True)
    comment = await post(t1, "comment", "ben", a1)
    votes = [(q1, "v1", 1), (q1, "v2", -1), (a1, "v1", 1), (a1, "v2", 1), (a1, "v3", -1), (b1, "v1", -1),
             (b1, "v2", -1), (gone, "v1", 1), (comment, "v2", 1), (a2, "v3", 1)]
    for post_id, voter, value in votes:
        await conn.execute("INSERT INTO votes (post_id, user_id, value) VALUES ($1, $2, $3)", post_id, ids[voter],
                           value)
    await conn.execute("UPDATE threads SET accepted_id = $2 WHERE id = $1", t1, a1)
    await conn.execute("UPDATE threads SET accepted_id = $2 WHERE id = $1", t2, a2)
    await conn.execute("INSERT INTO modlog (action, moderator_id, thread_id, post_id, target_user_id)"
                       " VALUES ('thread.accepted', $1, $2, $3, $4)", ids["mod"], t2, a2, ids["ask"])
    return {"ids": ids, "a1": a1}


async def _upgrade(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        before = await _fill_before(conn)
        ids = before["ids"]
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        got = {name: await conn.fetchval("SELECT reputation FROM users WHERE id = $1", uid)
               for name, uid in ids.items()}
        # ask: +5 -2 on the question, +2 for accepting a1 itself (not for the moderator's acceptance of a2).
        # ann: +10 +10 -2 on a1, +15 accepted, +10 on a2, +15 accepted. ben: two downs clip at 1; the deleted
        # response's vote and the comment's vote count nothing.
        assert got == {"ask": 1 + 5 - 2 + 2, "ann": 1 + 18 + 15 + 10 + 15, "ben": 1, "v1": 1, "v2": 1, "v3": 1,
                       "mod": 1}
        for uid in ids.values():
            assert await conn.fetchval(reputation.RECOUNT, uid) == await conn.fetchval(
                "SELECT reputation FROM users WHERE id = $1", uid)
        rows = await conn.fetch("SELECT user_id, delta, reason FROM reputation_events ORDER BY user_id")
        assert [(r["user_id"], r["delta"], r["reason"]) for r in rows] == [
            (ids["ask"], 5, "recount"), (ids["ann"], 58, "recount")]
        # The live rule goes on from there: a new up vote on a1 earns +10.
        async with conn.transaction():
            await posts.vote(conn, before["a1"], ids["mod"], 1)
        assert await conn.fetchval("SELECT reputation FROM users WHERE id = $1", ids["ann"]) == 59 + 10
    finally:
        await conn.close()



def test_upgrade_computes_reputation_from_existing_votes_and_acceptances(empty_db: str) -> None:
    """After the upgrade each user's reputation is what their votes and acceptances give, by the contract's rule."""
    asyncio.run(_upgrade(empty_db))
