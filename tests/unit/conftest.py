"""The fast layer (`./scripts/test --fast`, docs/testing.md): everything here runs in this process.

The API's rules are checked against the app built by server.app.create_app and driven through httpx's ASGI
transport (tests/support/inprocess.py): the memory broker, no Redis, no uvicorn, no port. PostgreSQL is real
(the session's database, tests/conftest.py); store tests take `tx`, a connection inside a transaction that
is rolled back afterwards. Here `server` and `forum` are the in-process app, so a test written against the
e2e fixtures' shapes (server.url, forum["mod"], support.api.Api) runs unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from support.inprocess import InProcessApp, settings_for


@pytest.fixture(scope="module", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """argon2id at the lowest cost it allows for this layer's apps (they run in this process): at the server's
    cost (server/auth.py: 19 MiB, 2 passes) every sign-up, sign-in and password check takes ~25 ms of CPU, and the
    layer makes hundreds of accounts. Hashes still go through argon2 and verify as before; the cost is not what
    these tests check (a hash's parameters travel in the hash, so servers verify them either way). Put back after
    each module, so a worker that runs other folders' files after this one has the server's hasher again."""
    from argon2 import PasswordHasher

    from server import auth
    saved = auth._hasher, auth._dummy
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth._dummy = auth._hasher.hash("not a password, only for timing")
    try:
        yield
    finally:
        auth._hasher, auth._dummy = saved


@pytest.fixture(scope="session")
def app(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """One in-process app for the whole layer (rate limits off, memory broker), on the session's database. Webhooks
    may point at loopback (the tests' receivers); tests/unit/test_webhooks.py starts a strict app beside it."""
    running = InProcessApp(settings_for(pg_url, tmp_path_factory.mktemp("data"), webhook_allow_private=True,
                                         webhook_workers=4)).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def server(app: InProcessApp) -> InProcessApp:
    """The e2e fixture's name for what serves the API: here the in-process app (it has .url)."""
    return app


@pytest.fixture(scope="session")
def spawn() -> None:
    """No server processes in this layer: a test that needs one belongs with the end-to-end tests."""
    pytest.fail("tests/unit/ runs in-process: spawn() starts a real server, so the test belongs elsewhere")


@pytest.fixture()
async def tx(pg_url: str) -> AsyncIterator[Any]:
    """A connection inside a transaction that is rolled back at the end: store tests leave nothing behind."""
    conn = await asyncpg.connect(pg_url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield conn
    finally:
        await transaction.rollback()
        await conn.close()


@pytest.fixture(scope="session")
def standard(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """A second in-process app, with PARLEY_TRUST=standard, on the same database (docs/moderation.md)."""
    running = InProcessApp(settings_for(pg_url, tmp_path_factory.mktemp("std"), trust="standard",
                                        db_pool_size=3)).start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def std_forum(standard: InProcessApp, pg_url: str) -> dict[str, Any]:
    """A moderator and a category on the `standard` app: {"mod": Api, "category": slug}."""
    from support.api import Api, unique
    from support.databases import make_moderator
    mod = Api(standard.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("std-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Standard"}).status_code == 201
    return {"mod": mod, "category": slug}
