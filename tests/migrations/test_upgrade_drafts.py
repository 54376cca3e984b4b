"""Upgrade to the drafts migration on a database holding data: users, threads and posts are kept, nobody has a
draft, and the new table takes drafts of the old users at once, refuses other keys, and goes with its user."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from server import migrations
from support import olddata

MINE = next(m.version for m in migrations.available() if m.name == "drafts")


async def _fill_before(url: str) -> dict[str, Any]:
    """At the version before: ada asks, bob answers, ada holds an API key, cy has written nothing."""
    async with olddata.at_version(url, MINE - 1) as conn:
        ids = await olddata.add_users(conn, "ada", "bob", "cy")
        tid, _, _ = await olddata.asked_and_answered(conn, ids["ada"], ids["bob"], "How do I boil an egg")
        await conn.execute("INSERT INTO api_keys (user_id, name, scopes, token_hash) VALUES ($1, 'k', '{read}', 'h')",
                           ids["ada"])
        return {"users": ids, "thread": tid}


async def _upgrade(url: str, before: dict[str, Any]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        ada, tid = before["users"]["ada"], before["thread"]
        out: dict[str, Any] = {
            "posts": [r["body"] for r in await conn.fetch("SELECT body FROM posts ORDER BY id")],
            "keys": await conn.fetchval("SELECT count(*) FROM api_keys"),
            "drafts_before": await conn.fetchval("SELECT count(*) FROM drafts"),
        }
        row = await conn.fetchrow("INSERT INTO drafts (user_id, key, body) VALUES ($1, $2, 'more') RETURNING"
                                  " revision, updated_at", ada, f"thread:{tid}")
        out["new"] = dict(row)
        cy = before["users"]["cy"]
        await conn.execute("INSERT INTO drafts (user_id, key, body) VALUES ($1, 'ask', '{}')", cy)
        try:
            await conn.execute("INSERT INTO drafts (user_id, key, body) VALUES ($1, 'thread:0', 'x')", ada)
            out["bad_key"] = "accepted"
        except asyncpg.CheckViolationError:
            out["bad_key"] = "refused"
        await conn.execute("DELETE FROM users WHERE id = $1", cy)
        out["left"] = [r["key"] for r in await conn.fetch("SELECT key FROM drafts")]
        return out
    finally:
        await conn.close()


def test_upgrade_adds_drafts_keeping_the_data(empty_db: str) -> None:
    """Old posts and keys stay; nobody has a draft; a new draft starts at revision 1; a key outside the four
    kinds is refused by the table itself; a deleted user's drafts go with them."""
    before = asyncio.run(_fill_before(empty_db))
    after = asyncio.run(_upgrade(empty_db, before))
    assert after["posts"] == ["q?", "an answer"] and after["keys"] == 1 and after["drafts_before"] == 0
    assert after["new"]["revision"] == 1 and after["new"]["updated_at"] is not None
    assert after["bad_key"] == "refused"
    assert after["left"] == [f"thread:{before['thread']}"]


@pytest.mark.parametrize("key", ["ask", "thread:1", "comment:9223372036854775807", "edit:42"])
def test_the_table_and_the_api_agree_on_keys(key: str) -> None:
    """Every key the API accepts matches the table's CHECK pattern (the same rule, written in SQL and Python)."""
    import re

    from server.store import drafts
    sql = re.search(r"key ~ '([^']+)'", next(m.sql for m in migrations.available() if m.name == "drafts"))
    assert sql is not None and re.fullmatch(sql.group(1).strip("^$"), key) and drafts.valid_key(key)
