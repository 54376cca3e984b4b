"""Upgrade to the notifications migration on a database holding data: authors and posters follow what
they wrote in, old posts get their seq back from the events (so unread counts work), and the next reply
notifies them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from server import migrations
from server.auth import hash_password
from support.processes import ServerProcess

PASSWORD = "correct horse battery"
MINE = next(m.version for m in migrations.available() if m.name == "notifications")


async def _fill_before(url: str) -> dict[str, Any]:
    """At the version before: ada asks, bo answers, cy comments (events 1–3 stored), dee only reads."""
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, target=MINE - 1)
        assert await migrations.current_version(conn) == MINE - 1
        pw = await hash_password(PASSWORD)
        ids = {}
        for name in ("ada", "bob", "cyd", "dee"):
            ids[name] = await conn.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                                            " ($1, $2, $3) RETURNING id", name, name.title(), pw)
        cat = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('old', 'Old') RETURNING id")
        tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title, seq, response_count)"
                                  " VALUES ($1, $2, 'Old question', 3, 1) RETURNING id", cat, ids["ada"])
        posts = {}
        parent = None
        for seq, (who, kind, body) in enumerate((("ada", "question", "q?"), ("bob", "response", "an answer"),
                                                 ("cyd", "comment", "a remark")), start=1):
            pid = await conn.fetchval(
                "INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html) VALUES"
                " ($1, $2, $3, $4, $5, $6) RETURNING id", tid, parent, kind, ids[who], body, f"<p>{body}</p>")
            await conn.execute("INSERT INTO thread_events (thread_id, seq, name, data) VALUES"
                               " ($1, $2, 'post.created', $3::jsonb)", tid, seq, json.dumps({"id": pid}))
            posts[kind] = pid
            parent = pid
        return {"users": ids, "thread": tid, "posts": posts}
    finally:
        await conn.close()


async def _upgrade(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        follows = await conn.fetch("SELECT user_id FROM thread_follows WHERE following")
        seqs = await conn.fetch("SELECT kind, seq FROM posts")
        return {"follows": {r["user_id"] for r in follows}, "seqs": {r["kind"]: r["seq"] for r in seqs}}
    finally:
        await conn.close()


def signed_in(url: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    r = client.post("/api/session", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client


def test_upgrade_backfills_following_and_post_seqs(empty_db: str, redis_url: str, tmp_path: Path) -> None:
    """After the upgrade the asker and posters follow the old thread (a non-poster does not), unread counts
    start from a read position over the old posts, and a new response notifies the asker and the followers."""
    data = asyncio.run(_fill_before(empty_db))
    ids = data["users"]
    after = asyncio.run(_upgrade(empty_db))
    assert after["follows"] == {ids["ada"], ids["bob"], ids["cyd"]}
    assert after["seqs"] == {"question": 1, "response": 2, "comment": 3}
    proc = ServerProcess({"DATABASE_URL": empty_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1",
                          "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    proc.start()
    try:
        tid = data["thread"]
        ada, bo, dee = (signed_in(proc.url, n) for n in ("ada", "bob", "dee"))
        listed = {t["id"]: t for t in ada.get("/api/threads").json()["threads"]}
        assert listed[tid]["following"] is True and listed[tid]["unread"] is None  # no read position yet
        assert dee.get(f"/api/threads/{tid}").json()["thread"]["following"] is False
        assert ada.put(f"/api/threads/{tid}/read", json={"seq": 1}).status_code == 204
        assert ada.get(f"/api/threads/{tid}").json()["thread"]["unread"] == 2  # bo's response, cy's comment
        r = dee.post(f"/api/threads/{tid}/posts", json={"body": "a late answer"})
        assert r.status_code == 201, r.text
        post_id = r.json()["post"]["id"]
        mine = [n["kind"] for n in ada.get("/api/notifications").json()["notifications"] if n["post_id"] == post_id]
        assert mine == ["response"]
        theirs = [n["kind"] for n in bo.get("/api/notifications").json()["notifications"] if n["post_id"] == post_id]
        assert theirs == ["followed"]
        assert ada.get(f"/api/threads/{tid}").json()["thread"]["unread"] == 3
    finally:
        proc.stop()
