"""Upgrade to the credential-epoch migration on a database holding users and sessions: every session alive
before the upgrade still works after it, and the epoch then does its job (a password change ends the others)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from server import migrations
from server.auth import Cookies, hash_password
from server.config import Settings
from server.store.sessions import key
from support.processes import ServerProcess

PASSWORD = "correct horse battery"
SECRET = "test-secret-0123456789abcdef"
MINE = next(m.version for m in migrations.available() if m.name == "credential_epoch")


async def _fill_before(url: str) -> dict[str, list[str]]:
    """At the version before: ada with two sessions (laptop, phone), bob with one; the cookies, by user."""
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, target=MINE - 1)
        assert await migrations.current_version(conn) == MINE - 1
        pw = await hash_password(PASSWORD)
        cookies = Cookies(Settings(secret=SECRET))
        made: dict[str, list[str]] = {}
        for name, devices in (("ada", 2), ("bob", 1)):
            uid = await conn.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                                      " ($1, $2, $3) RETURNING id", name, name.title(), pw)
            for _ in range(devices):
                sid = secrets.token_urlsafe(32)
                await conn.execute("INSERT INTO sessions (id, user_id) VALUES ($1, $2)", key(sid), uid)
                made.setdefault(name, []).append(cookies.dump(sid))
        return made
    finally:
        await conn.close()


async def _upgrade(url: str) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        return [tuple(r) for r in await conn.fetch(
            "SELECT u.credential_epoch, s.epoch FROM sessions s JOIN users u ON u.id = s.user_id")]
    finally:
        await conn.close()


def client(url: str, cookie: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, headers={"Cookie": f"parley_session={cookie}"})


def test_upgrade_keeps_every_session_working(empty_db: str, redis_url: str, tmp_path: Path) -> None:
    """After the upgrade users and sessions are at epoch 0 together, so every old cookie still answers /api/me;
    a password change by one of ada's sessions then ends her other one (and the changer's), not bob's."""
    made = asyncio.run(_fill_before(empty_db))
    assert asyncio.run(_upgrade(empty_db)) == [(0, 0)] * 3
    proc = ServerProcess({"DATABASE_URL": empty_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1",
                          "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": SECRET})
    proc.start()
    try:
        laptop, phone = (client(proc.url, c) for c in made["ada"])
        bob = client(proc.url, made["bob"][0])
        for who, name in ((laptop, "ada"), (phone, "ada"), (bob, "bob")):
            r = who.get("/api/me")
            assert r.status_code == 200 and r.json()["user"]["username"] == name, r.text
        r = laptop.put("/api/me/password", json={"old_password": PASSWORD, "new_password": "a brand new password"})
        assert r.status_code == 200, r.text
        assert client(proc.url, r.cookies["parley_session"]).get("/api/me").status_code == 200
        assert client(proc.url, made["ada"][0]).get("/api/me").status_code == 401
        assert phone.get("/api/me").status_code == 401
        assert bob.get("/api/me").status_code == 200
    finally:
        proc.stop()
