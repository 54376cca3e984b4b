"""Parley behind a real PgBouncer in transaction mode (docs/operations.md "PgBouncer in transaction mode"):
with PARLEY_DB_STATEMENT_CACHE=0 it migrates, starts and serves writes and reads while PgBouncer hands its
statements to whichever of two server connections is free."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from support.api import Api, new_thread
from support.ports import free_port

PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed (.ci/apt-packages installs it)")


async def _ping(url: str) -> None:
    conn = await asyncpg.connect(url, statement_cache_size=0, timeout=2)
    await conn.close()


@pytest.fixture()
def pgbouncer(fresh_db: str) -> Iterator[str]:
    """A pgbouncer (transaction mode, 2 server connections per database) in front of the test's own database;
    the URL of that database through it. PgBouncer refuses to run as root: as root it runs as `postgres`."""
    upstream = urlsplit(fresh_db)
    if upstream.hostname is None:  # the embedded PostgreSQL listens on a socket in a directory only root may enter
        pytest.skip("PgBouncer runs as postgres: it needs a PostgreSQL on TCP (DATABASE_URL, as in CI)")
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="parley-pgbouncer-"))
    (tmp / "users.txt").write_text(f'"{upstream.username or "postgres"}" ""\n')
    (tmp / "pgbouncer.ini").write_text(f"""[databases]
{upstream.path.lstrip("/")} = host={upstream.hostname} port={upstream.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {tmp / "users.txt"}
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
logfile = {tmp / "pgbouncer.log"}
""")
    cmd = [PGBOUNCER or "pgbouncer", str(tmp / "pgbouncer.ini")]
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        for p in [tmp, *tmp.iterdir()]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = upstream._replace(netloc=f"{upstream.username or 'postgres'}@127.0.0.1:{port}").geturl()
    try:
        deadline = time.time() + 30
        while True:
            try:
                asyncio.run(_ping(url))
                break
            except (OSError, asyncpg.PostgresError):
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"pgbouncer did not start: {(tmp / 'pgbouncer.log').read_text()}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_server_with_no_statement_cache_works_through_pgbouncer_in_transaction_mode(
        pgbouncer: str, fresh_db: str, spawn: Any) -> None:
    """PARLEY_DB_STATEMENT_CACHE=0: migrations, sign-up, a thread, 40 concurrent replies and the thread page all
    work through PgBouncer in transaction mode, where each transaction may run on another server connection."""
    srv = spawn(DATABASE_URL=pgbouncer, PARLEY_DB_STATEMENT_CACHE="0", PARLEY_DB_POOL_SIZE="8")
    mod = Api(srv.url).sign_up()
    assert mod.user is not None

    async def promote() -> None:
        conn = await asyncpg.connect(fresh_db)  # straight to PostgreSQL: the test's own moderator
        try:
            await conn.execute("UPDATE users SET is_moderator = true WHERE id = $1", mod.user["id"])
        finally:
            await conn.close()
    asyncio.run(promote())
    slug = f"pgb{time.time_ns() % 10**9}"
    assert mod.post("/api/categories", json={"slug": slug, "name": "Pooled"}).status_code == 201
    tid = new_thread(mod, slug)["thread"]["id"]
    cookie = mod.session_cookie

    async def replies() -> list[tuple[int, str]]:
        async with httpx.AsyncClient(base_url=srv.url, cookies={"parley_session": cookie}, timeout=60) as client:
            answers = await asyncio.gather(*(client.post(f"/api/threads/{tid}/posts", json={"body": f"reply {i}"})
                                             for i in range(40)))
        return [(r.status_code, r.text) for r in answers]
    answered = asyncio.run(replies())
    assert [code for code, _ in answered] == [201] * 40, [text for code, text in answered if code != 201][:3]
    page = mod.get(f"/api/threads/{tid}")
    assert page.status_code == 200, page.text
    assert page.json()["thread"]["response_count"] == 40
