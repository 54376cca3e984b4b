"""Server processes going away: SIGKILL (clients move to the survivor) and SIGTERM (a graceful drain)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time

import asyncpg
import httpx
import pytest
import redis as redis_sync

from fault_support import setup_forum
from support.api import Api
from support.databases import namespace
from support.ws import Watcher


async def test_sigkill_watchers_resume_on_the_survivor_with_every_event_once(spawn, pg_url, watchers):
    """Process A is SIGKILLed while 6 clients watch through it, 3 post through B and 1 posts through A with
    Idempotency-Keys (retrying on B once A is gone): each watcher reconnects to B with `since` = the last seq it
    saw and ends with every event exactly once, in order, and no retried reply was stored twice."""
    a, b = spawn(), spawn()
    mod, slug, tid = setup_forum(b.url, pg_url)
    users = [Api(a.url).sign_up() for _ in range(3)]
    first = [await watchers(a.ws_url, cookie=u.session_cookie) for u in users]
    first += [await watchers(a.ws_url) for _ in range(3)]          # and three guests
    for w in first:
        assert (await w.subscribe(tid))["seq"] == 1
    posters = [httpx.AsyncClient(base_url=b.url, cookies=Api(b.url).sign_up().http.cookies, timeout=30)
               for _ in range(3)]
    per_poster = 60
    keyed = 40
    last_seq = 1 + 3 * per_poster + keyed
    resumed: list[Watcher | None] = [None] * len(first)
    reconnect_after: list[float] = []
    killed_at: list[float] = []

    async def post(client: httpx.AsyncClient, k: int) -> None:
        for i in range(per_poster):
            r = await client.post(f"/api/threads/{tid}/posts", json={"body": f"poster {k} reply {i}"})
            assert r.status_code == 201, r.text
            await asyncio.sleep(0.01)

    keyed_user = Api(a.url).sign_up()
    retried: list[int] = []

    async def post_keyed() -> None:
        """Through A until it dies, then the same request (same key) through B: exactly one post per key."""
        target = a
        for i in range(keyed):
            key = f"kill-{tid}-{i}"
            while True:
                try:
                    async with httpx.AsyncClient(base_url=target.url, cookies=keyed_user.http.cookies,
                                                 timeout=10) as c:
                        r = await c.post(f"/api/threads/{tid}/posts", json={"body": f"keyed {i}"},
                                         headers={"Idempotency-Key": key})
                    if r.status_code == 409 and r.json()["error"]["code"] == "idempotency_in_progress":
                        await asyncio.sleep(0.2)
                        continue
                    assert r.status_code in (200, 201), r.text
                    break
                except httpx.TransportError:
                    target = b
                    retried.append(i)
            await asyncio.sleep(0.02)

    async def kill() -> None:
        await asyncio.sleep(1.0)
        killed_at.append(time.monotonic())
        await asyncio.to_thread(a.kill)

    async def follow(i: int) -> None:
        w = first[i]
        while w.closed is None:
            await asyncio.sleep(0.02)
        seen = w.seqs(tid)
        since = seen[-1] if seen else 1
        resumed[i] = nw = await watchers(b.ws_url, cookie=users[i].session_cookie if i < 3 else None)
        sub = await nw.subscribe(tid, since=since)
        assert not sub.get("reset"), sub
        reconnect_after.append(time.monotonic() - killed_at[0])

    await asyncio.gather(kill(), post_keyed(), *(post(c, k) for k, c in enumerate(posters)),
                         *(follow(i) for i in range(6)))
    assert a.proc.returncode == -signal.SIGKILL
    print(f"killed after seqs {[w.seqs(tid)[-1] if w.seqs(tid) else 1 for w in first]};"
          f" reconnected within {max(reconnect_after):.2f} s; keyed replies retried on B: {retried}")
    assert any(len(w.seqs(tid)) < last_seq - 1 for w in first), "the kill came after the last event"
    for old, new in zip(first, resumed, strict=True):
        assert new is not None
        await new.wait_seq(tid, last_seq, timeout=30)
        got = old.seqs(tid) + new.seqs(tid)
        assert got == list(range(2, last_seq + 1)), (old.seqs(tid)[-3:], new.seqs(tid)[:3])
        assert all(e["name"] == "post.created" for e in old.events.get(tid, []) + new.events[tid])
    bodies = [e["data"]["body"] for e in resumed[0].events[tid] + first[0].events.get(tid, [])]
    assert sorted(b for b in bodies if b.startswith("keyed ")) == sorted(f"keyed {i}" for i in range(keyed))
    for c in posters:
        await c.aclose()


def _slow_post(port: int, cookie: str, path: str, body: bytes) -> socket.socket:
    """Start a POST by hand: headers and half the body now; the test sends the rest later."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
               f"Cookie: parley_session={cookie}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
              + body[:len(body) // 2])
    return s


def _response(s: socket.socket, timeout: float = 10) -> tuple[int, bytes]:
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), None)
            if length is not None and len(rest) >= length:
                break
    s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_drains_in_flight_request_closes_sockets_1012_and_clears_presence(
        spawn, pg_url, own_redis, watchers, workers):
    """SIGTERM while a POST is half-sent and 4 sockets watch: the POST still completes (201, stored), every
    socket gets close code 1012 at once, the process exits within 10 s, and its presence entries
    (parley:<deployment>:pr:* in Redis) are gone when it has exited."""
    srv = spawn(workers=workers, REDIS_URL=own_redis.url, wait="/readyz")
    mod, slug, tid = setup_forum(srv.url, pg_url)
    users = [Api(srv.url).sign_up() for _ in range(3)]
    ws = [await watchers(srv.ws_url, cookie=u.session_cookie) for u in users] + [await watchers(srv.ws_url)]
    for w in ws:
        await w.subscribe(tid)
    r = redis_sync.Redis.from_url(own_redis.url)
    ids = {str(u.user["id"]).encode() for u in users}
    procs_key = namespace(pg_url) + ":pr:procs"  # presence lives under the forum's namespace

    def entries() -> set[bytes]:
        # The hashes of presence's shared keys (docs/presence.md) are keyed by user id.
        keys = [k for k in r.keys("parley:*:pr:*") if r.type(k) == b"hash"]
        return {f for k in keys for f in r.hkeys(k)}
    deadline = time.monotonic() + 10
    while not ids <= entries():
        assert time.monotonic() < deadline, f"presence never reached Redis: {entries()}"
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    assert 1 <= r.zcard(procs_key) <= workers

    body = json.dumps({"body": "started before SIGTERM " + "x" * 2000}).encode()
    inflight = _slow_post(srv.port, mod.session_cookie, f"/api/threads/{tid}/posts", body)
    await asyncio.sleep(0.3)
    sent_term = time.monotonic()
    srv.signal(signal.SIGTERM)
    closed_within = []
    for w in ws:
        while w.closed is None:
            assert time.monotonic() - sent_term < 5, "a socket was not closed within 5 s of SIGTERM"
            await asyncio.sleep(0.02)
        closed_within.append(time.monotonic() - sent_term)
    await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - sent_term)))
    assert srv.proc.poll() is None, "exited without waiting for the in-flight request"
    inflight.sendall(body[len(body) // 2:])
    status, answer = await asyncio.to_thread(_response, inflight)
    assert status == 201, (status, answer)
    post_id = json.loads(answer)["post"]["id"]
    code = await asyncio.to_thread(srv.proc.wait, 15)
    exited = time.monotonic() - sent_term
    left = entries() & ids, r.zcard(procs_key)
    print(f"sockets closed within {max(closed_within):.2f} s; exit {code} after {exited:.2f} s; left in Redis {left}")

    assert [w.closed for w in ws] == [1012] * 4
    assert max(closed_within) < 2.0
    assert exited < 10, f"exit took {exited:.1f} s"
    assert code == 0, srv.output()[-3000:]
    assert left == (set(), 0), f"presence entries left behind: {left}"
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM posts WHERE id = $1 AND thread_id = $2", post_id, tid) == 1
        assert await conn.fetchval("SELECT seq FROM threads WHERE id = $1", tid) == 2
    finally:
        await conn.close()
    r.close()
