"""Upgrade to the e-mail migration on a database holding data: users keep everything and get no address and
the default preferences, notifications made before are never mailed, and the new tables work at once."""

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
MINE = next(m.version for m in migrations.available() if m.name == "email")


async def _fill_before(url: str) -> dict[str, Any]:
    """At the version before: ada asks, bob answers (ada has an unread notification), an old session."""
    async with olddata.at_version(url, MINE - 1) as conn:
        ids = await olddata.add_users(conn, "ada", "bob", password_hash=await hash_password(PASSWORD))
        tid, _, r = await olddata.asked_and_answered(conn, ids["ada"], ids["bob"])
        await conn.execute("INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id, created_at)"
                           " VALUES ($1, 'response', $2, $3, $4, now() - interval '1 day')",
                           ids["ada"], ids["bob"], tid, r)
        return {"users": ids, "thread": tid}


async def _upgrade(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        users = await conn.fetch("SELECT username, email, email_verified, email_notifications, digest FROM users")
        mail = await conn.fetch("SELECT mail FROM notifications")
        await conn.execute("UPDATE users SET email = 'ada@example.org', email_verified = true WHERE username = 'ada'")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("UPDATE users SET email = 'ADA@example.org', email_verified = true"
                               " WHERE username = 'bob'")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE users SET digest = 'hourly' WHERE username = 'bob'")
        return {"users": {r["username"]: dict(r) for r in users}, "mail": [r["mail"] for r in mail],
                "outbox": await conn.fetchval("SELECT count(*) FROM mail_outbox")}
    finally:
        await conn.close()


def test_upgrade_adds_email_without_mailing_the_past(empty_db: str, redis_url: str, tmp_path: Path) -> None:
    """Users get no address and the defaults (away, weekly); an old unread notification is marked looked at, so
    the upgraded server mails nothing; verified addresses are unique any case; the new endpoints answer."""
    asyncio.run(_fill_before(empty_db))
    after = asyncio.run(_upgrade(empty_db))
    for name in ("ada", "bob"):
        assert after["users"][name] == {"username": name, "email": None, "email_verified": False,
                                        "email_notifications": "away", "digest": "weekly"}
    assert after["mail"] == ["skipped"] and after["outbox"] == 0
    proc = ServerProcess({"DATABASE_URL": empty_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1", "PARLEY_MAIL_DELAY_SECONDS": "0",
                          "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    proc.start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as c:
            r = c.post("/api/session", json={"username": "ada", "password": PASSWORD})
            assert r.status_code == 200, r.text
            assert r.json()["user"]["email"] == "ada@example.org" and r.json()["user"]["email_verified"] is True
            assert c.get("/api/me/preferences").json() == {
                "preferences": {"email_notifications": "away", "digest": "weekly"}}
            assert "email" not in c.get("/api/users/ada").json()["user"]
            assert c.post("/api/password-reset", json={"email": "ada@example.org"}).status_code == 202
        kinds = _outbox_once_sent(empty_db)
        assert kinds == ["reset"], kinds  # the reset just asked for, and no mail for the old notification
    finally:
        proc.stop()


def _outbox_once_sent(url: str) -> list[str]:
    """The kinds of mail in the outbox once the reset mail is sent (the workers have been running meanwhile)."""
    import time

    async def kinds() -> tuple[list[str], bool]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT kind, sent_at IS NOT NULL AS sent FROM mail_outbox ORDER BY id")
            return [r["kind"] for r in rows], any(r["sent"] for r in rows)
        finally:
            await conn.close()
    deadline = time.time() + 30
    while time.time() < deadline:
        found, sent = asyncio.run(kinds())
        if sent:
            return found
        time.sleep(0.1)
    raise AssertionError("the reset mail was not sent within 30 s")
