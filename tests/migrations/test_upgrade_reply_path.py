"""Upgrade to 0018_reply_path on a database holding data: notifications keep their rows (and only the recipient's
foreign key), followers are read from the new index, search vectors and upload references come out as before for
replies written by the real reply statement after the upgrade."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from server import migrations
from server.store import notifications, posts
from support import olddata

MINE = next(m.version for m in migrations.available() if m.name == "reply_path")
SHA = "cd" * 32


async def _fill_before(conn: asyncpg.Connection) -> dict[str, Any]:
    """At 0017: ada asks, bob answers; ada, bob and dan follow the thread; ada was notified of bob's answer."""
    ids = await olddata.add_users(conn, "ada", "bob", "cy", "dan")
    tid, q, r = await olddata.asked_and_answered(conn, ids["ada"], ids["bob"], title="Sourdough starter",
                                                 question="Why does my starter die")
    await conn.execute("INSERT INTO thread_follows (user_id, thread_id, following) SELECT u, $1, true"
                       " FROM unnest($2::bigint[]) u", tid, [ids["ada"], ids["bob"], ids["dan"]])
    await conn.execute("INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id)"
                       " VALUES ($1, 'response', $2, $3, $4)", ids["ada"], ids["bob"], tid, r)
    return {"users": ids, "thread": tid, "question": q, "response": r}


async def _reply(conn: asyncpg.Connection, thread: int, author: int, body: str) -> asyncpg.Record:
    """A response written by the server's own statement (store/posts.py), as POST /api/threads/{id}/posts does."""
    row = await conn.fetchrow(posts._CREATE_RESPONSE, thread, None, "response", author, body, f"<p>{body}</p>", [],
                              f"thread:{thread}")
    assert row is not None
    return row


async def _upgrade(url: str) -> dict[str, Any]:
    async with olddata.at_version(url, MINE - 1) as conn:
        before = await _fill_before(conn)
        old_vector = await conn.fetchval("SELECT search::text FROM posts WHERE id = $1", before["response"])
        applied = await migrations.migrate(conn, MINE)  # 0018 as released (0019 drops the recipient's key)
        assert MINE in [m.version for m in applied]
        ids, tid = before["users"], before["thread"]
        out: dict[str, Any] = {
            "old_notifications": [tuple(r) for r in await conn.fetch(
                "SELECT user_id, kind, actor_id, post_id FROM notifications ORDER BY id")],
            "keys": sorted(await conn.fetchval(
                "SELECT array_agg(pg_get_constraintdef(oid)) FROM pg_constraint"
                " WHERE conrelid = 'notifications'::regclass AND contype = 'f'")),
            "indexes": [await conn.fetchval("SELECT to_regclass($1)::text", n)
                        for n in ("thread_follows_followers", "thread_follows_thread", "notifications_thread")],
        }
        # An old post's vector is what the new trigger makes of it (an edit to the same text recomputes it).
        await conn.execute("UPDATE posts SET body = body WHERE id = $1", before["response"])
        out["old_vector_same"] = old_vector == await conn.fetchval(
            "SELECT search::text FROM posts WHERE id = $1", before["response"])
        linked = await _reply(conn, tid, ids["cy"], f"Feed it rye flour ![x](/uploads/{SHA}.png)")
        plain = await _reply(conn, tid, ids["cy"], "Keep it warm")
        out["notified"] = sorted(zip(linked["n_user"], linked["n_kind"], strict=True))
        out["vectors"] = [tuple(r) for r in await conn.fetch(
            "SELECT search = parley_search_vector(NULL, body), search @@ to_tsquery('english', 'rye | warm')"
            " FROM posts WHERE id = any($1::bigint[]) ORDER BY id", [linked["id"], plain["id"]])]
        out["refs"] = [tuple(r) for r in await conn.fetch("SELECT sha256, post_id FROM upload_refs")]
        await conn.execute("UPDATE posts SET body = 'Feed it rye flour' WHERE id = $1", linked["id"])
        out["refs_after_edit"] = await conn.fetchval("SELECT count(*) FROM upload_refs")
        await conn.execute("UPDATE posts SET deleted = true WHERE id = $1", plain["id"])
        out["deleted_vector"] = await conn.fetchval("SELECT search FROM posts WHERE id = $1", plain["id"])
        # A new question's vector still holds its thread's title (weight A).
        t2 = await olddata.add_thread(conn, await conn.fetchval("SELECT min(id) FROM categories"), ids["bob"],
                                      "Bicycle chains", seq=0)
        await conn.fetchrow(posts._CREATE_QUESTION, t2, None, "question", ids["bob"], "How tight", "<p>How tight</p>",
                            [], None)
        out["question_vector"] = await conn.fetchval(
            "SELECT search = parley_search_vector('Bicycle chains', body)"
            " AND search @@ to_tsquery('english', 'bicycle') FROM posts WHERE thread_id = $1 AND kind = 'question'", t2)
        # The recipient's key stays: a member deleted by hand takes their notifications with them.
        dan = "SELECT count(*) FROM notifications WHERE user_id = $1"
        out["dan_had"] = await conn.fetchval(dan, ids["dan"])
        await conn.execute("DELETE FROM users WHERE id = $1", ids["dan"])
        out["dan_left"] = await conn.fetchval(dan, ids["dan"])
        # A thread deleted now withdraws its notifications, the old one included, by its posts.
        out["withdrawn"] = sorted(await notifications.withdraw_thread(conn, tid))
        out["left_in_thread"] = await conn.fetchval("SELECT count(*) FROM notifications WHERE thread_id = $1", tid)
        return {"before": before, "after": out}


def test_upgrade_keeps_notifications_and_replies_index_search_and_refer_as_before(empty_db: str) -> None:
    """0017 → 0018: the old notification stays and only user_id keeps a foreign key; the followers' index replaces
    the old one and notifications_thread goes; replies written after it notify the asker and the followers, get
    the vectors the old trigger made and the upload references of their bodies (and lose them on an edit); a
    question's vector keeps its title; a user deleted by hand takes their notifications along; a deleted thread's
    notifications, old and new, are withdrawn."""
    result = asyncio.run(_upgrade(empty_db))
    ids, before, after = result["before"]["users"], result["before"], result["after"]
    assert after["old_notifications"] == [(ids["ada"], "response", ids["bob"], before["response"])]
    assert after["keys"] == ["FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"]
    assert after["indexes"] == ["thread_follows_followers", None, None]
    assert after["old_vector_same"]
    assert after["notified"] == [(ids["ada"], "response"), (ids["bob"], "followed"), (ids["dan"], "followed")]
    assert after["vectors"] == [(True, True), (True, True)]
    linked_id = [pid for _, pid in after["refs"]]
    assert len(after["refs"]) == 1 and after["refs"][0][0] == SHA and linked_id[0] > before["response"]
    assert after["refs_after_edit"] == 0
    assert after["deleted_vector"] is None
    assert after["question_vector"] is True
    assert after["dan_had"] == 2 and after["dan_left"] == 0
    assert after["withdrawn"] == sorted([ids["ada"], ids["bob"]]) and after["left_in_thread"] == 0
