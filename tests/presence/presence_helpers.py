"""Helpers for the presence tests: websocket clients that record frames, bulk users, isolated servers.

Presence is global state of a Redis, so these tests run their servers against
a redis-server of their own (support.processes.RedisServer) and filter by their own users.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from support.api import Api, unique
from support.processes import RedisServer, ServerProcess

SECRET = "test-secret-0123456789abcdef"
DEFAULT_GRACE = 15.0  # server/config.py presence_grace_seconds


def server_env(pg_url: str, redis: str | None, tmp: str, **extra: str) -> dict[str, str]:
    """Environment for a `parley serve` of these tests; redis None runs the in-process twin."""
    env = {"DATABASE_URL": pg_url, "REDIS_URL": redis or "", "PARLEY_RATE_LIMITS": "off",
           "PARLEY_DATA_DIR": tmp, "PARLEY_SECRET": SECRET}
    env.update(extra)
    return env


def start_server(pg_url: str, redis: str | None, tmp: str, **extra: str) -> ServerProcess:
    return ServerProcess(server_env(pg_url, redis, tmp, **extra)).start()


@pytest.fixture(scope="module")
def iso_redis() -> Iterator[RedisServer]:
    """A redis-server of this module's own: presence seen here is only ours."""
    server = RedisServer().start()
    yield server
    server.stop()


class Client:
    """One websocket that records every frame it receives, with the monotonic time of arrival."""

    def __init__(self, ws: ClientConnection, parse: bool = True) -> None:
        self.ws = ws
        self.parse = parse
        self.frames: list[tuple[float, Any]] = []
        self.raw_presence = 0  # presence frames counted without parsing (storms): how many, bytes, the last
        self.raw_bytes = 0
        self.last_presence: str | None = None
        self.last_presence_at = 0.0
        self.changed = asyncio.Event()
        self.closed = False
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if self.parse:
                    self.frames.append((time.monotonic(), json.loads(msg)))
                elif msg.startswith('{"type":"presence"'):
                    self.raw_presence += 1
                    self.raw_bytes += len(msg)
                    self.last_presence = msg
                    self.last_presence_at = time.monotonic()
                else:
                    self.frames.append((time.monotonic(), json.loads(msg)))
                self.changed.set()
        except Exception:
            pass
        finally:
            self.closed = True
            self.changed.set()

    async def send(self, obj: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(obj))

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self.task, 10)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for _, f in self.frames if f.get("type") == kind]

    def presence(self, thread: int | None = None) -> list[dict[str, Any]]:
        """Presence frames of the site (thread None) or of one thread, oldest first."""
        return [f for f in self.of_type("presence")
                if (f["scope"] == "site" if thread is None else f.get("thread") == thread)]

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10,
                       start: int = 0) -> dict[str, Any]:
        """The first frame (from index `start`) that satisfies pred; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.frames):
                if pred(self.frames[i][1]):
                    return self.frames[i][1]
                i += 1
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise AssertionError(f"no matching frame in {timeout}s; got {[f for _, f in self.frames][-5:]}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass


async def open_ws(server: ServerProcess, cookie: str | None = None, parse: bool = True, retries: int = 0) -> Client:
    """A websocket to server, signed in with the session cookie (or a guest), past hello.

    With retries, a socket the server closes before hello (1013: e.g. the shared PostgreSQL is out of
    connections for a moment) is opened again after a pause, as the page does.
    """
    headers = {"Cookie": f"parley_session={cookie}"} if cookie else {}
    for attempt in range(retries + 1):
        ws = await connect(server.ws_url, additional_headers=headers, open_timeout=60, max_size=None,
                           ping_interval=None, compression=None)
        client = Client(ws, parse)
        try:
            await client.wait_for(lambda f: f["type"] == "hello", 30)
            return client
        except AssertionError:
            if attempt == retries or not client.closed:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def ids(frame_or_body: dict[str, Any]) -> set[int]:
    return {u["id"] for u in frame_or_body["users"]}


def has(user: Api) -> Callable[[dict[str, Any]], bool]:
    uid = user.user["id"]  # type: ignore[index]
    return lambda f: f["type"] == "presence" and f["scope"] == "site" and uid in ids(f)


def lacks(user: Api) -> Callable[[dict[str, Any]], bool]:
    uid = user.user["id"]  # type: ignore[index]
    return lambda f: f["type"] == "presence" and f["scope"] == "site" and uid not in ids(f)


def site(server: ServerProcess) -> dict[str, Any]:
    r = httpx.get(server.url + "/api/presence", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def thread_presence(server: ServerProcess, thread_id: int) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/threads/{thread_id}/presence", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def eventually(check: Callable[[], bool], timeout: float = 10, every: float = 0.1) -> float:
    """Wait until check() holds; returns the seconds it took."""
    start = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)
    return time.monotonic() - start


def bulk_users(pg_url: str, n: int) -> list[tuple[dict[str, Any], str]]:
    """n users with live sessions, made straight in the database (no argon2 per user): [(brief, cookie)]."""
    import secrets

    import asyncpg
    from itsdangerous import Signer

    from server.store import sessions
    signer = Signer(SECRET, salt="parley.session")
    prefix = unique("s")

    async def run() -> list[tuple[dict[str, Any], str]]:
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch(
                "INSERT INTO users (username, display_name, password_hash)"
                " SELECT $1 || i, 'Storm ' || i, 'x' FROM generate_series(1, $2) AS i"
                " RETURNING id, username, display_name", prefix, n)
            out = []
            for r in rows:
                sid = secrets.token_urlsafe(32)
                await sessions.create(conn, sid, r["id"], 0)  # a new user: credential epoch 0
                out.append((dict(r), signer.sign(sid).decode()))
            return out
        finally:
            await conn.close()
    return asyncio.run(run())
