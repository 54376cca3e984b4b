"""The app in this process: server.app.create_app with its lifespan entered, driven through httpx's ASGI
transport. No uvicorn, no port, no Redis (the memory broker and the in-process rate limiter).

The app runs on an event loop of its own, in a thread, so plain (sync) tests and async tests alike can
call it: `support.api.Api(app.url)` and `httpx.Client(base_url=app.url, transport=app.transport)` reach it
through a sync transport, `app.async_transport` serves an httpx.AsyncClient on any other loop. What it
cannot do is what needs a real process: websockets, the HTTP protocol layer (server/httpguard.py runs
inside uvicorn), signals, several processes, Redis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager

from server import config
from server.app import Parley, create_app

from .api import TRANSPORTS

T = TypeVar("T")
_numbers = itertools.count(1)


def settings_for(pg_url: str, data_dir: Path, **changes: Any) -> config.Settings:
    """What the e2e `server` fixture gives its process: rate limits off, a fixed secret, a small pool.

    No webhook deliverer unless asked (webhook_workers=…): the apps of the layer share the session's database,
    so every deliverer claims every app's deliveries, and one that refuses loopback targets (the default) turns
    a test receiver's delivery into refused tries and back-offs (test_webhooks.py's retry test saw 4 tries and
    took 30 s). The session's `app` (tests/unit/conftest.py) is the one that delivers."""
    base = config.Settings(database_url=pg_url, redis_url=None, secret="test-secret-0123456789abcdef",
                           rate_limits_enabled=False, data_dir=data_dir, db_pool_size=6, render_workers=1,
                           render_budget_seconds=10, demo_on_empty=False, webhook_workers=0)
    return dataclasses.replace(base, **changes)


class InProcessApp:
    """create_app(settings) on a loop thread of its own, lifespan entered by start() and left by stop()."""

    def __init__(self, settings: config.Settings) -> None:
        self.settings = settings
        self.app: Parley = create_app(settings)
        self.url = f"http://inprocess-{next(_numbers)}.test"  # no such host: nothing leaves the process
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="in-process app", daemon=True)
        self.lifespan: LifespanManager | None = None
        # client=: the peer address the app sees (what uvicorn would report for a loopback client)
        self.asgi = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 40000))
        self.transport = _SyncBridge(self)
        self.async_transport = _AsyncBridge(self)

    def start(self) -> InProcessApp:
        self.thread.start()

        async def enter() -> None:  # asgi-lifespan picks its backend from the loop it is made on
            self.lifespan = LifespanManager(self.app, startup_timeout=60, shutdown_timeout=60)
            await self.lifespan.__aenter__()
        self.call(enter())
        TRANSPORTS[self.url] = self.transport
        return self

    def stop(self) -> None:
        TRANSPORTS.pop(self.url, None)
        try:
            if self.lifespan is not None:
                self.call(self.lifespan.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    @property
    def state(self) -> Any:
        """The AppState the lifespan built (pool, broker, hub, limiter, …)."""
        return self.app.state

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the app's loop and wait for it (from any thread but the app's own)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def handle(self, request: httpx.Request, body: bytes | list[bytes]) -> httpx.Response:
        """One request through the ASGI transport, on the app's loop; the whole answer read. A body given as
        chunks (a generator's, sent chunked with no Content-Length) reaches the app as chunks too."""
        async def chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
            for part in parts:
                yield part
        content = body if isinstance(body, bytes) else chunks(body)
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=content)
        response = await self.asgi.handle_async_request(inner)
        content = await response.aread()
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=content, request=request)

    def client(self, **kwargs: Any) -> httpx.Client:
        """A plain httpx client of this app (a guest: no cookies yet)."""
        return httpx.Client(base_url=self.url, transport=self.transport, **kwargs)


class _SyncBridge(httpx.BaseTransport):
    def __init__(self, app: InProcessApp) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body: bytes | list[bytes] = (request.read() if isinstance(request.stream, httpx.ByteStream)
                                     else list(request.stream))  # type: ignore[arg-type]
        return self.app.call(self.app.handle(request, body))


class _AsyncBridge(httpx.AsyncBaseTransport):
    def __init__(self, app: InProcessApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        future = asyncio.run_coroutine_threadsafe(self.app.handle(request, body), self.app.loop)
        return await asyncio.wrap_future(future)
