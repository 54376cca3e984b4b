"""Upgrade across the hardening migration (idempotency keys bound to a thread) on a database holding data."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from server import migrations
from server.auth import hash_password
from support.processes import ServerProcess

PASSWORD = "correct horse battery"


# This migration's number, whatever migrations are merged before it.
V = next(m.version for m in migrations.available() if m.name == "hardening")


async def _fill_before(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, target=V - 1)
        assert await migrations.current_version(conn) == V - 1
        pw = await hash_password(PASSWORD)
        uid = await conn.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                                  " ('upgrader', 'Up', $1) RETURNING id", pw)
        cat = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('old', 'Old') RETURNING id")
        tids, pids = [], []
        for n in range(2):
            tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title, seq) VALUES"
                                      " ($1, $2, $3, 2) RETURNING id", cat, uid, f"thread {n}")
            for kind, body in (("question", "q"), ("response", f"answer {n}")):
                pid = await conn.fetchval(
                    "INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html) VALUES"
                    " ($1, $2, $3, $4, $5, $6) RETURNING id", tid, pids[-1] if kind == "response" else None,
                    kind, uid, body, f"<p>{body}</p>")
                pids.append(pid)
            tids.append(tid)
        await conn.execute("INSERT INTO idempotency_keys (user_id, key, post_id) VALUES ($1, 'k-done', $2)",
                           uid, pids[1])
        await conn.execute("INSERT INTO idempotency_keys (user_id, key, post_id) VALUES ($1, 'k-flight', NULL)",
                           uid)
        return {"user": uid, "threads": tids, "posts": pids}
    finally:
        await conn.close()


async def _upgrade(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert [m.version for m in applied] == list(range(V, migrations.head() + 1))
        assert await migrations.current_version(conn) == migrations.head()
        pk = await conn.fetch(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = any(i.indkey) WHERE i.indrelid = 'idempotency_keys'::regclass AND i.indisprimary")
        assert {r["attname"] for r in pk} == {"user_id", "thread_id", "key"}
        return await conn.fetch("SELECT user_id, thread_id, key, post_id FROM idempotency_keys ORDER BY key")
    finally:
        await conn.close()


def test_upgrade_binds_existing_keys_to_their_thread(empty_db: str, redis_url: str, tmp_path: Path) -> None:
    """A key made before the migration keeps answering with its post on its own thread, is a new request on another
    thread; an in-flight key (no post yet) is dropped; the rest of the data is untouched."""
    data = asyncio.run(_fill_before(empty_db))
    rows = asyncio.run(_upgrade(empty_db))
    assert [(r["key"], r["thread_id"], r["post_id"]) for r in rows] == [("k-done", data["threads"][0],
                                                                           data["posts"][1])]
    proc = ServerProcess({"DATABASE_URL": empty_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1",
                          "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    proc.start()
    try:
        client = httpx.Client(base_url=proc.url, timeout=30)
        assert client.post("/api/session", json={"username": "upgrader", "password": PASSWORD}).status_code == 200
        t1, t2 = data["threads"]
        page = client.get(f"/api/threads/{t1}").json()
        assert page["question"]["body"] == "q" and [r["body"] for r in page["responses"]] == ["answer 0"]
        done = {"Idempotency-Key": "k-done"}
        again = client.post(f"/api/threads/{t1}/posts", json={"body": "answer 0"}, headers=done)
        assert again.status_code == 200 and again.json()["post"]["id"] == data["posts"][1], again.text
        other = client.post(f"/api/threads/{t2}/posts", json={"body": "new"}, headers=done)
        assert other.status_code == 201 and other.json()["post"]["thread_id"] == t2, other.text
        flight = client.post(f"/api/threads/{t1}/posts", json={"body": "was in flight"},
                             headers={"Idempotency-Key": "k-flight"})
        assert flight.status_code == 201, flight.text
    finally:
        proc.stop()
