"""Upgrade to the identity migration (API keys) on a database holding data: users and their sessions keep
working, the api_keys table takes keys at once, its scopes are checked, and a user's keys go with the user."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server import migrations
from server.auth import hash_password
from support import olddata
from support.processes import ServerProcess

PASSWORD = "correct horse battery"
MINE = next(m.version for m in migrations.available() if m.name == "identity")


async def _fill_before(url: str) -> dict[str, Any]:
    """At the version before: two users, a category and a thread."""
    async with olddata.at_version(url, MINE - 1) as conn:
        ids = await olddata.add_users(conn, "ada", "bob", password_hash=await hash_password(PASSWORD))
        tid = await olddata.add_thread(conn, await olddata.add_category(conn), ids["ada"], "Old")
        await olddata.add_post(conn, tid, "question", ids["ada"], "q?", 1)
        return {"users": ids, "thread": tid}


async def _upgrade(url: str, ids: dict[str, int]) -> None:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        assert await conn.fetchval("SELECT count(*) FROM api_keys") == 0
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO api_keys (user_id, name, scopes, token_hash) VALUES ($1, 'x', '{write}',"
                               " 'h1')", ids["bob"])
        await conn.execute("INSERT INTO api_keys (user_id, name, scopes, token_hash) VALUES ($1, 'x', '{read}', 'h2')",
                           ids["bob"])
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO api_keys (user_id, name, scopes, token_hash) VALUES ($1, 'y', '{read}',"
                               " 'h2')", ids["ada"])
    finally:
        await conn.close()


def test_upgrade_adds_api_keys(empty_db: str, redis_url: str, tmp_path: Path) -> None:
    """After the upgrade an old user signs in, makes a key and reads with it; the old thread is still there."""
    before = asyncio.run(_fill_before(empty_db))
    asyncio.run(_upgrade(empty_db, before["users"]))
    proc = ServerProcess({"DATABASE_URL": empty_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1",
                          "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    proc.start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as c:
            assert c.post("/api/session", json={"username": "ada", "password": PASSWORD}).status_code == 200
            r = c.post("/api/me/api-keys", json={"name": "reader", "scopes": ["read"]})
            assert r.status_code == 201, r.text
            token = r.json()["token"]
        r = httpx.get(f"{proc.url}/api/threads/{before['thread']}", headers={"Authorization": f"Bearer {token}"},
                      timeout=30)
        assert r.status_code == 200 and r.json()["thread"]["title"] == "Old"
    finally:
        proc.stop()
