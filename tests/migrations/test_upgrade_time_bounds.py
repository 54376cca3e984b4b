"""Upgrade to the time-bounds migration on a database holding data: a suspension an older release stored as
'infinity' (for 9999-12-31T23:59:59.999999Z) becomes the last moment of the range and reads again, one before
the range is lifted, an ordinary one is kept, and the range is a constraint from then on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server import migrations
from server.auth import hash_password
from support.processes import ServerProcess

PASSWORD = "correct horse battery"
MINE = next(m.version for m in migrations.available() if m.name == "time_bounds")


async def _fill_before(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, target=MINE - 1)
        pw = await hash_password(PASSWORD)
        for name, until in (("forever", "infinity"), ("never", "-infinity"), ("ancient", "1970-01-01 00:00+00"),
                            ("later", "2090-05-01 12:00+00"), ("free", None)):
            await conn.execute("INSERT INTO users (username, display_name, password_hash, suspended_until,"
                               " suspension_reason) VALUES ($1, $1, $2, $3::text::timestamptz, $4)",
                               name, pw, until, "old" if until else None)
    finally:
        await conn.close()


async def _upgrade(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        rows = await conn.fetch("SELECT username, suspended_until::text AS until, suspension_reason FROM users")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE users SET suspended_until = 'infinity' WHERE username = 'free'")
        return {r["username"]: (r["until"], r["suspension_reason"]) for r in rows}
    finally:
        await conn.close()


def test_upgrade_bounds_stored_suspensions(empty_db: str, redis_url: str, tmp_path: Path) -> None:
    """'infinity' becomes 2999-12-31T23:59:59.999999Z (the profile and sign-in answer, no 500); '-infinity' and
    1970 are lifted; a 2090 suspension is kept; storing 'infinity' again is refused by the database."""
    asyncio.run(_fill_before(empty_db))
    after = asyncio.run(_upgrade(empty_db))
    assert after["forever"][0].startswith("2999-12-31 23:59:59.999999") and after["forever"][1] == "old"
    assert after["never"] == (None, None) and after["ancient"] == (None, None) and after["free"] == (None, None)
    assert after["later"][0].startswith("2090-05-01 12:00:00") and after["later"][1] == "old"
    proc = ServerProcess({"DATABASE_URL": empty_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1",
                          "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    proc.start()
    try:
        for name, shown in (("forever", "2999-12-31T23:59:59.999999Z"), ("later", "2090-05-01T12:00:00.000000Z")):
            r = httpx.get(f"{proc.url}/api/users/{name}", timeout=30)
            assert r.status_code == 200 and r.json()["user"]["suspended_until"] == shown, r.text
            r = httpx.post(proc.url + "/api/session", json={"username": name, "password": PASSWORD}, timeout=30)
            assert r.status_code == 403 and r.json()["error"]["code"] == "suspended", r.text
        for name in ("never", "ancient"):
            r = httpx.post(proc.url + "/api/session", json={"username": name, "password": PASSWORD}, timeout=30)
            assert r.status_code == 200, r.text
    finally:
        proc.stop()
