"""Test helpers: an HTTP client per user, unique names, a moderator, a thread."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Api:
    """A signed-in (or guest) HTTP client for one user."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.user: dict[str, Any] | None = None

    def sign_up(self, username: str | None = None, password: str = "correct horse battery",
                display_name: str | None = None) -> Api:
        username = username or unique()
        body: dict[str, Any] = {"username": username, "password": password}
        if display_name:
            body["display_name"] = display_name
        r = self.http.post("/api/users", json=body)
        assert r.status_code == 201, r.text
        self.user = r.json()["user"]
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)

    @property
    def session_cookie(self) -> str:
        return self.http.cookies.get("parley_session") or ""


def make_moderator(pg_url: str, username: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("UPDATE users SET is_moderator = true WHERE lower(username) = lower($1)", username)
        finally:
            await conn.close()
    # Works from sync tests and from inside a running event loop alike.
    import threading
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def new_thread(api: Api, category: str, title: str = "A question", body: str = "What do you think?") -> dict[str, Any]:
    r = api.post("/api/threads", json={"category": category, "title": title, "body": body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def db_fetchval(pg_url: str, sql: str, *args: Any) -> Any:
    """One value from the test database; works inside a running event loop too."""
    import asyncio
    import threading

    import asyncpg
    out: list[Any] = []

    async def run() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            out.append(await conn.fetchval(sql, *args))
        finally:
            await conn.close()
    t = threading.Thread(target=lambda: asyncio.run(run()))
    t.start()
    t.join()
    return out[0] if out else None


def namespace(pg_url: str) -> str:
    """The Redis namespace of the forum in this database (parley:<deployment id>)."""
    return "parley:" + db_fetchval(pg_url, "SELECT value FROM parley_meta WHERE key = 'deployment'")
