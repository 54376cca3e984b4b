"""The compose topology without containers: two `parley serve` processes sharing
PostgreSQL and Redis, with Debian's nginx (rendered from deploy/nginx.conf) in
front on loopback. Clients talk to nginx exactly as browsers would in production."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from contextlib import suppress
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from deploy_helpers import free_port, server_available
from support.api import Api, unique
from support.databases import make_moderator

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not server_available(), reason="server/cli.py does not exist yet"),
]


# --- fixtures ------------------------------------------------------------------------------------


class Stack:
    """nginx in front of app A and app B, plus a moderator and a thread to watch."""

    def __init__(self, a: Any, b: Any, nginx: Any):
        self.a, self.b, self.nginx = a, b, nginx
        self.origin = nginx.base_url
        self.ws_url = f"ws://127.0.0.1:{nginx.port}/ws"
        self.cookie = ""  # the moderator's session, as a Cookie header value
        self.thread_id = 0
        self.question_id = 0

    def address(self, app: Any) -> str:
        return f"127.0.0.1:{app.port}"

    def diagnostics(self) -> str:
        return "\n".join([
            f"--- app A log ---\n{self.a.output()[-3000:]}",
            f"--- app B log ---\n{self.b.output()[-3000:]}",
            f"--- nginx access.log ---\n{self.nginx.access_log()[-3000:]}",
            f"--- nginx error.log ---\n{self.nginx.error_log()[-3000:]}",
        ])


@pytest.fixture
def stack(spawn, pg_url, nginx_factory):
    """Two `parley serve` processes on one database and one Redis, behind nginx on loopback."""
    nginx_port = free_port()
    env = {
        # The public origin is nginx's: browsers send it on writes and on /ws.
        "PARLEY_ALLOWED_ORIGINS": f"http://127.0.0.1:{nginx_port}",
        "PARLEY_TRUSTED_PROXIES": "127.0.0.1",
    }
    # Both share the database, Redis and PARLEY_SECRET (spawn's defaults).
    a = spawn(wait="/readyz", **env)
    b = spawn(wait="/readyz", **env)
    nginx = nginx_factory([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"], port=nginx_port)
    s = Stack(a, b, nginx)
    mod = Api(s.origin).sign_up()
    make_moderator(pg_url, mod.user["username"])
    slug = unique("ops-")
    r = mod.post("/api/categories", json={"slug": slug, "name": "Operations"})
    assert r.status_code == 201, r.text
    r = mod.post("/api/threads", json={"category": slug, "title": "Rolling restarts", "body": "Anything lost?"})
    assert r.status_code == 201, r.text
    s.thread_id = r.json()["thread"]["id"]
    s.question_id = r.json()["question"]["id"]
    s.cookie = f"parley_session={mod.session_cookie}"
    mod.http.close()
    yield s
    print(s.diagnostics())  # shown only when the test failed


async def post_reply(s: Stack, base_url: str, body: str, key: str | None = None,
                     client: httpx.AsyncClient | None = None) -> dict[str, Any]:
    """POST a response as the moderator; no Origin header, as a non-browser client sends none."""
    own = client is None
    client = client or httpx.AsyncClient(timeout=10)
    try:
        headers = {"Cookie": s.cookie}
        if key:
            headers["Idempotency-Key"] = key
        r = await client.post(f"{base_url}/api/threads/{s.thread_id}/posts", json={"body": body}, headers=headers)
        assert r.status_code in (200, 201), f"{base_url}: {r.status_code} {r.text}"
        return r.json()["post"]
    finally:
        if own:
            await client.aclose()


async def thread_seq(s: Stack) -> int:
    async with httpx.AsyncClient(base_url=s.origin, timeout=10) as c:
        r = await c.get(f"/api/threads/{s.thread_id}/events", params={"since": 0, "limit": 1})
        assert r.status_code == 200, r.text
        return r.json()["seq"]


def metric(text: str, name: str) -> float:
    """The sum of a series' samples in Prometheus text (0 when absent)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith((name + " ", name + "{")))


class Watcher:
    """A websocket client through nginx that follows one thread, reconnecting with `since`."""

    def __init__(self, s: Stack):
        self.s = s
        self.events: list[dict] = []  # every event frame, in arrival order, across connections
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.last_seq = 0
        self.subscribed = asyncio.Event()
        self._stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stop.set()
        if self.task:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task

    async def wait_for_seq(self, seq: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.last_seq < seq:
            if self.task and self.task.done():
                self.task.result()  # re-raise what killed the watcher
            if time.monotonic() > deadline:
                raise AssertionError(f"watcher stuck at seq {self.last_seq}, expected {seq}")
            await asyncio.sleep(0.05)

    async def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                async with ws_connect(self.s.ws_url, origin=self.s.origin, open_timeout=5,
                                      max_size=2**22) as ws:
                    self.connections += 1
                    delay = 0.1
                    try:
                        await self._follow(ws)
                    finally:
                        self.close_codes.append(ws.close_code)
            except (TimeoutError, ConnectionClosed, InvalidHandshake, OSError):
                pass
            # Back off briefly: the process we were on is restarting; nginx sends us to the other.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _follow(self, ws) -> None:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello", hello
        await ws.send(json.dumps({"type": "subscribe", "thread": self.s.thread_id, "since": self.last_seq}))
        expected_next = self.last_seq + 1
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "event" and frame.get("thread") == self.s.thread_id:
                # In order, no gap, no duplicate -- within a connection and across reconnects.
                assert frame["seq"] == expected_next, (frame["seq"], expected_next)
                expected_next += 1
                self.events.append(frame)
                self.last_seq = frame["seq"]
            elif kind == "subscribed":
                assert not frame.get("reset"), f"replay no longer possible: {frame}"
                assert frame["seq"] >= self.last_seq
                self.subscribed.set()
            elif kind == "error":
                raise AssertionError(f"server sent an error frame: {frame}")


# --- tests ---------------------------------------------------------------------------------------


async def test_live_events_through_nginx_from_either_app(stack):
    """A websocket client through nginx receives live replies posted directly to app A and to app B."""
    w = Watcher(stack)
    w.start()
    try:
        await asyncio.wait_for(w.subscribed.wait(), 15)
        await w.wait_for_seq(1, 10)  # since=0 replays the question (event 1)
        posted = []
        for i, (name, app) in enumerate([("A", stack.a), ("B", stack.b), ("A", stack.a), ("B", stack.b)]):
            post = await post_reply(stack, app.url, f"reply {i} via {name}")
            posted.append(post["id"])
            await w.wait_for_seq(1 + len(posted), 10)
        events = w.events
        assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
        assert all(e["name"] == "post.created" for e in events)
        assert [e["data"]["id"] for e in events] == [stack.question_id, *posted]
        assert w.connections == 1, "the socket should not have been dropped"
        # Each process's /metrics (scraped directly, not through nginx) saw its share.
        published = delivered = 0.0
        async with httpx.AsyncClient(timeout=10) as c:
            for app in (stack.a, stack.b):
                text = (await c.get(app.url + "/metrics")).text
                published += metric(text, "parley_events_published_total")
                delivered += metric(text, "parley_events_delivered_total")
                assert "parley_fanout_latency_seconds_count" in text and "parley_ws_open_sockets" in text
        assert published >= 4 and delivered >= 4, (published, delivered)
    finally:
        await w.stop()

    # The upgrade went through nginx (logged when the socket closes): 101 Switching Protocols.
    deadline = time.monotonic() + 5
    while '"GET /ws HTTP/1.1" 101' not in stack.nginx.access_log() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert '"GET /ws HTTP/1.1" 101' in stack.nginx.access_log()


async def test_http_api_through_nginx_balances_and_forwards(stack):
    """Plain HTTP through nginx reaches both apps and applies the public-origin check."""
    async with httpx.AsyncClient(base_url=stack.origin, timeout=10) as c:
        for path in ("/healthz", "/readyz", f"/api/threads/{stack.thread_id}"):
            r = await c.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text)
        # A state-changing request from a foreign Origin is refused (PARLEY_ALLOWED_ORIGINS).
        r = await c.post(f"/api/threads/{stack.thread_id}/posts", json={"body": "x"},
                         headers={"Cookie": stack.cookie, "Origin": "http://evil.example"})
        assert r.status_code == 403, r.text
        # ...and the public origin, as the browser sends it through nginx, is allowed.
        r = await c.post(f"/api/threads/{stack.thread_id}/posts", json={"body": "hello"},
                         headers={"Cookie": stack.cookie, "Origin": stack.origin})
        assert r.status_code == 201, r.text
        for _ in range(8):
            assert (await c.get("/healthz")).status_code == 200

    upstreams = {line.rsplit("upstream=", 1)[1].split("/")[0]
                 for line in stack.nginx.access_log().splitlines() if "upstream=" in line}
    assert {stack.address(stack.a), stack.address(stack.b)} <= upstreams, upstreams


async def test_rolling_restart_loses_no_event(stack):
    """Restarting app A then app B (SIGTERM, start) while replies flow: the nginx client sees every seq once."""
    w = Watcher(stack)
    w.start()
    stop_posting = asyncio.Event()
    created: list[int] = []
    failures: list[str] = []

    async def poster():
        # Through nginx, as a browser would. A request that fails in flight is retried
        # with the same Idempotency-Key, so a retry never makes a second post.
        async with httpx.AsyncClient(timeout=10) as client:
            for i in itertools.count():
                if stop_posting.is_set():
                    return
                key = f"rolling-{i}"
                for attempt in range(50):
                    try:
                        post = await post_reply(stack, stack.origin, f"reply {i}", key=key, client=client)
                        if post["id"] not in created:
                            created.append(post["id"])
                        break
                    except (httpx.HTTPError, AssertionError) as exc:
                        failures.append(f"{i}/{attempt}: {exc}")
                        await asyncio.sleep(0.2)
                else:
                    raise AssertionError(f"reply {i} never got through: {failures[-3:]}")
                await asyncio.sleep(0.03)

    try:
        await asyncio.wait_for(w.subscribed.wait(), 15)
        posting = asyncio.create_task(poster())
        await asyncio.sleep(1.0)
        for name, app in (("A", stack.a), ("B", stack.b)):
            before = len(created)
            rc = await asyncio.to_thread(app.stop, 30.0)
            assert rc == 0, f"app {name} exited {rc} on SIGTERM:\n{app.output()[-3000:]}"
            await asyncio.to_thread(app.start, "/readyz")
            # Replies kept flowing while this app was away and coming back.
            await asyncio.sleep(1.0)
            assert len(created) > before, f"no reply got through while {name} restarted: {failures[-5:]}"
            # As docs/operations.md says: before the next restart, let nginx's fail_timeout (5 s) pass, so it
            # routes to the restarted app again (else, for a few seconds, no app would be in rotation).
            await asyncio.sleep(5.0)
        stop_posting.set()
        await asyncio.wait_for(posting, 60)

        final = await thread_seq(stack)
        assert final == 1 + len(created)
        await w.wait_for_seq(final, 30)
    finally:
        stop_posting.set()
        await w.stop()

    seqs = [e["seq"] for e in w.events]
    assert seqs == list(range(1, final + 1)), "every seq exactly once, in order"
    assert [e["data"]["id"] for e in w.events] == [stack.question_id, *created]
    # The watcher was on one of the two apps, so it was cut off at least once and resumed.
    assert w.connections >= 2, f"watcher was never disconnected (close codes {w.close_codes})"
    # Closed for a restart by the server (1012), not dropped by nginx or a crash.
    print("close codes:", w.close_codes)
    assert 1012 in w.close_codes, w.close_codes
