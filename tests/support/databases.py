"""Throw-away databases and one-off queries against them.

The sync functions work from plain tests and from inside a running event loop alike: they run their
query on a thread with its own loop.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

T = TypeVar("T")


def with_db(url: str, name: str) -> str:
    """`url` with its database name replaced by `name`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def db_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a thread of its own (so a running loop in this one does not matter)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(asyncio.run(make()))  # type: ignore[arg-type]
        except BaseException as exc:  # reported below, in the caller's thread
            errors.append(exc)
    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_empty_database(admin_url: str, prefix: str = "parley_empty") -> str:
    """A fresh database with nothing in it, not even the schema; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    run_sync(lambda: _execute(admin_url, f'CREATE DATABASE "{name}"'))
    return with_db(admin_url, name)


def create_database(admin_url: str, prefix: str = "parley_test") -> str:
    """A fresh database with every migration applied; returns its URL."""
    from server import migrations
    url = create_empty_database(admin_url, prefix)

    async def migrate() -> None:
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
    run_sync(migrate)
    return url


def drop_database(admin_url: str, url: str) -> None:
    """Drop it, closing whatever still uses it; best effort (a test's cleanup must not fail the test)."""
    try:
        run_sync(lambda: _execute(admin_url, f'DROP DATABASE IF EXISTS "{db_name(url)}" WITH (FORCE)'))
    except Exception:
        pass


def db_fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Every row of one query."""
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()
    return run_sync(run)


def db_fetchval(url: str, sql: str, *args: Any) -> Any:
    """The first value of one query (None for no row)."""
    rows = db_fetch(url, sql, *args)
    return rows[0][0] if rows else None


def make_moderator(url: str, username: str) -> None:
    db_fetch(url, "UPDATE users SET is_moderator = true WHERE lower(username) = lower($1)", username)


def namespace(url: str) -> str:
    """The Redis namespace of the forum in this database (parley:<deployment id>)."""
    return "parley:" + db_fetchval(url, "SELECT value FROM parley_meta WHERE key = 'deployment'")


def clear_rate_limits(redis_url: str, pg_url: str) -> None:
    """Empty every rate-limit bucket that the forum in `pg_url` keeps in the Redis at `redis_url`. All the limiter
    keeps is `<namespace>:rl:*` (server/ratelimit.py), so a module's rate-limited server then limits as a new one
    would: its tests share the process instead of starting one (and a redis-server) each."""
    import redis
    client = redis.Redis.from_url(redis_url)
    try:
        stale = list(client.scan_iter(match=f"{namespace(pg_url)}:rl:*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()
