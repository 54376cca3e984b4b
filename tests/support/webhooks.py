"""A real webhook receiver on loopback for the tests: an aiohttp server on a thread of its own that keeps every
request it gets (headers and body, as received) and answers as told per path: 2xx, a status for the first N
requests, a redirect, or a hang."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .threaded_aiohttp import ThreadedServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Behaviour:
    fail_first: int = 0          # answer `status` to this many requests, then 204
    status: int = 500
    redirect_to: str | None = None
    hang: bool = False
    seen: int = 0


@dataclass
class Receiver:
    requests: list[Received] = field(default_factory=list)
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        self.server = ThreadedServer("webhook receiver")
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self.lock:
            self.requests.append(Received(request.path, {k.lower(): v for k, v in request.headers.items()}, body,
                                         time.monotonic()))
            b = self.behaviours.setdefault(request.path, Behaviour())
            b.seen += 1
            seen = b.seen
        if b.hang:  # 5 s: far past any timeout a test sets; but over once the client has hung up, so that stop()
            for _ in range(100):  # (which waits for running handlers) does not wait for a handler nobody reads
                if request.transport is None or request.transport.is_closing():
                    break
                await asyncio.sleep(0.05)
        if b.redirect_to is not None:
            raise web.HTTPFound(b.redirect_to)
        if seen <= b.fail_first:
            return web.Response(status=b.status, text="not now")
        return web.Response(status=204)

    def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.port = self.server.serve(app)
        return self

    def stop(self) -> None:
        self.server.stop()

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 30.0) -> list[Received]:
        """The requests to `path` once there are at least `count` (AssertionError after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.at(path)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{path}: {len(self.at(path))} requests of {count} within {timeout} s")


def payloads(received: list[Received]) -> list[Any]:
    import json
    return [json.loads(r.body) for r in received]
