"""Upgrade to 0019_recipient_key on a database holding data: notifications keep their rows and lose their last
foreign key; replies written after it still notify; a users row deleted by hand still takes its notifications."""

from __future__ import annotations

import asyncio
from typing import Any

from server import migrations
from server.store import posts
from support import olddata

MINE = next(m.version for m in migrations.available() if m.name == "recipient_key")

_KEYS = ("SELECT coalesce(array_agg(pg_get_constraintdef(oid)), '{}') FROM pg_constraint"
         " WHERE conrelid = 'notifications'::regclass AND contype = 'f'")


async def _upgrade(url: str) -> dict[str, Any]:
    async with olddata.at_version(url, MINE - 1) as conn:
        # At 0018: ada asks, bob answers; ada, bob, cy and dan follow the thread; ada and dan hold notifications.
        ids = await olddata.add_users(conn, "ada", "bob", "cy", "dan", "eve")
        tid, _, r = await olddata.asked_and_answered(conn, ids["ada"], ids["bob"], title="Sourdough starter",
                                                     question="Why does my starter die")
        await conn.execute("INSERT INTO thread_follows (user_id, thread_id, following) SELECT u, $1, true"
                           " FROM unnest($2::bigint[]) u", tid, [ids["ada"], ids["bob"], ids["cy"], ids["dan"]])
        await conn.execute("INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id)"
                           " SELECT u, 'response', $1, $2, $3 FROM unnest($4::bigint[]) u",
                           ids["bob"], tid, r, [ids["ada"], ids["dan"]])
        old = [tuple(x) for x in await conn.fetch("SELECT id, user_id, kind, read FROM notifications ORDER BY id")]
        keys_before = await conn.fetchval(_KEYS)

        applied = await migrations.migrate(conn, MINE)
        assert [m.version for m in applied] == [MINE]
        out: dict[str, Any] = {"ids": ids, "old": old, "keys_before": keys_before, "keys": await conn.fetchval(_KEYS)}
        out["kept"] = [tuple(x) for x in await conn.fetch(
            "SELECT id, user_id, kind, read FROM notifications ORDER BY id")]
        # A reply by the server's own statement after the upgrade: the asker and the other followers, once each.
        row = await conn.fetchrow(posts._CREATE_RESPONSE, tid, None, "response", ids["cy"], "Keep it warm",
                                  "<p>Keep it warm</p>", [ids["eve"]], f"thread:{tid}")
        out["notified"] = sorted(zip(row["n_user"], row["n_kind"], strict=True))
        # Two users deleted by hand in one statement take their notifications (old and new) along; others stay.
        await conn.execute("DELETE FROM users WHERE id = any($1::bigint[])", [ids["dan"], ids["eve"]])
        out["left"] = sorted(tuple(x) for x in await conn.fetch("SELECT user_id, post_id FROM notifications"))
        out["reply"] = row["id"]
        out["response"] = r
        return out


def test_upgrade_drops_the_recipients_key_and_keeps_notifications_and_the_cascade(empty_db: str) -> None:
    """0018 → 0019: notifications keep every row and lose the recipient's foreign key; a reply written after it
    notifies the asker, the followers and the mentioned; deleting users by hand still deletes their notifications
    (and only theirs)."""
    out = asyncio.run(_upgrade(empty_db))
    ids = out["ids"]
    assert out["keys_before"] == ["FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"]
    assert out["keys"] == []
    assert out["kept"] == out["old"] and len(out["old"]) == 2
    assert out["notified"] == sorted([(ids["ada"], "response"), (ids["bob"], "followed"), (ids["dan"], "followed"),
                                      (ids["eve"], "mention")])
    assert out["left"] == sorted([(ids["ada"], out["response"]), (ids["ada"], out["reply"]),
                                  (ids["bob"], out["reply"])])
