"""Upgrade to the pictures migration (0011) on a database holding data: users keep everything and have no
avatar, existing posts (one naming an /uploads/ URL already) get their references, and uploads work at once."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from PIL import Image

from server import migrations
from server.auth import hash_password
from support import olddata
from support.processes import ServerProcess

PASSWORD = "correct horse battery"
MINE = next(m.version for m in migrations.available() if m.name == "uploads")
SHA = "ab" * 32


async def _fill_before(url: str) -> dict[str, Any]:
    """At the version before: ada asks a question whose text names an /uploads/ URL, and bob answers."""
    async with olddata.at_version(url, MINE - 1) as conn:
        ids = await olddata.add_users(conn, "ada", "bob", password_hash=await hash_password(PASSWORD))
        tid, q, _ = await olddata.asked_and_answered(conn, ids["ada"], ids["bob"],
                                                     question=f"see ![x](/uploads/{SHA}.png)", question_html="<p>q</p>")
        return {"users": ids, "thread": tid, "question": q}


async def _upgrade(url: str, before: dict[str, Any]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        users = await conn.fetch("SELECT username, avatar_url, avatar_upload_id FROM users ORDER BY username")
        # The trigger is in place for posts written from now on, and for a change of an old post's text.
        await conn.execute("UPDATE posts SET body = body || ' ' WHERE id = $1", before["question"])
        refs = await conn.fetch("SELECT sha256, post_id FROM upload_refs")
        return {"users": [dict(r) for r in users], "refs": [tuple(r) for r in refs]}
    finally:
        await conn.close()


def test_upgrade_adds_uploads_and_avatars_to_a_database_with_data(empty_db: str, redis_url: str,
                                                                   tmp_path: Path) -> None:
    """Users come through with no avatar; an old post's edit records the upload it names; the upgraded server
    takes an upload and sets it as an avatar, which the user's briefs then carry."""
    before = asyncio.run(_fill_before(empty_db))
    after = asyncio.run(_upgrade(empty_db, before))
    assert after["users"] == [{"username": "ada", "avatar_url": None, "avatar_upload_id": None},
                              {"username": "bob", "avatar_url": None, "avatar_upload_id": None}]
    assert after["refs"] == [(SHA, before["question"])]
    proc = ServerProcess({"DATABASE_URL": empty_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1",
                          "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    proc.start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            assert c.post("/api/session", json={"username": "ada", "password": PASSWORD}).status_code == 200
            buf = io.BytesIO()
            Image.new("RGB", (40, 40), (9, 99, 199)).save(buf, "PNG")
            r = c.post("/api/uploads", files={"file": ("a.png", buf.getvalue(), "image/png")})
            assert r.status_code == 201, r.text
            r = c.put("/api/me/avatar", json={"upload_id": r.json()["upload"]["id"]})
            assert r.status_code == 200, r.text
            avatar = r.json()["user"]["avatar_url"]
            page = c.get(f"/api/threads/{before['thread']}").json()
            assert page["question"]["author"]["avatar_url"] == avatar
            assert page["responses"][0]["author"]["avatar_url"] is None
    finally:
        proc.stop()
