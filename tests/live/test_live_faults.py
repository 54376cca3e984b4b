"""Failures staged for real: a Redis restart, a watcher that stops reading, hostile frames."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time

import httpx

from support.api import Api, new_thread, unique
from support.databases import make_moderator


async def test_redis_restart_loses_nothing_and_readyz_reports_it(spawn, pg_url, own_redis, watchers):
    """Redis killed and restarted mid-stream: writes keep succeeding, /readyz goes 503 and back to 200,
    and watchers on both processes end with every seq exactly once."""
    a = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    b = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    mod = Api(a.url).sign_up()
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Faults"}).status_code == 201
    tid = new_thread(mod, slug)["thread"]["id"]
    ws = [await watchers(p.ws_url) for p in (a, b)]
    for w in ws:
        await w.subscribe(tid)
    poster = httpx.AsyncClient(base_url=b.url, cookies=Api(b.url).sign_up().http.cookies, timeout=30)
    statuses: list[int] = []
    ready_seen: set[int] = set()

    async def post(n: int) -> None:
        for i in range(n):
            r = await poster.post(f"/api/threads/{tid}/posts", json={"body": f"during outage {i}"})
            statuses.append(r.status_code)
            await asyncio.sleep(0.02)

    async def outage() -> None:
        await asyncio.sleep(0.5)
        own_redis.stop()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = await asyncio.to_thread(httpx.get, a.url + "/readyz")
            ready_seen.add(r.status_code)
            if r.status_code == 503:
                assert "broker" in r.text
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        own_redis.start()

    await asyncio.gather(post(120), outage())
    assert set(statuses) == {201}
    assert 503 in ready_seen
    deadline = time.monotonic() + 20
    while (await asyncio.to_thread(httpx.get, a.url + "/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "readyz never recovered"
        await asyncio.sleep(0.2)
    last = 1 + 120
    for w in ws:
        await w.wait_seq(tid, last, timeout=30)
        assert w.seqs(tid) == list(range(2, last + 1))
    await poster.aclose()


async def test_watcher_that_stops_reading_is_closed_1013_others_unaffected(spawn, pg_url, watchers):
    """A raw socket that never reads is closed with 1013 once its pending output passes the cap,
    while a normal watcher on the same thread keeps receiving promptly."""
    # The heartbeat is not under test: a client that never reads answers no ping, and a busy machine's
    # posting could outlast ping interval + timeout (then the close would be the keepalive's 1011).
    srv = spawn(PARLEY_WS_MAX_PENDING_BYTES="65536", PARLEY_WS_HEARTBEAT_SECONDS="300")
    mod = Api(srv.url).sign_up()
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Slow"}).status_code == 201
    tid = new_thread(mod, slug)["thread"]["id"]

    # The slow client: a hand-made websocket handshake, a subscribe, then it stops reading.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, so the window stays small
    slow.connect(("127.0.0.1", srv.port))
    key = base64.b64encode(os.urandom(16)).decode()
    slow.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:  # a client waits for 101 before sending frames
        head += slow.recv(1)
    assert head.startswith(b"HTTP/1.1 101")
    payload = json.dumps({"type": "subscribe", "thread": tid}).encode()
    mask = os.urandom(4)
    slow.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    fast = await watchers(srv.ws_url)
    await fast.subscribe(tid)
    await asyncio.sleep(0.3)

    posted = threading.Event()

    def read_once_closed() -> bytes:
        """Reads the slow socket as soon as the server has closed it for falling behind (its metric says so),
        or else once the posting is over. On the raw path the close frame waits behind megabytes of unread
        events, and the server drops the connection, close frame and all, when its close is not answered
        within CLOSE_TIMEOUT: so the reading starts at the close, not after the posting (which on a busy
        machine can be later). On the ASGI path (compression) the close frame is sent, and counted, only
        once the client reads again: there the reading starts after the posting."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not posted.is_set():
            if "parley_ws_slow_consumer_closes_total 1.0" in httpx.get(srv.url + "/metrics").text:
                break
            time.sleep(0.05)
        slow.settimeout(10)
        data = b""
        try:
            while True:
                chunk = slow.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return data
    reading = asyncio.ensure_future(asyncio.to_thread(read_once_closed))

    # ~40 KB per event (body + html): 200 of them outgrow the kernel's socket buffers (4 MB) and the cap.
    big = "x" * 19000
    client = httpx.AsyncClient(base_url=srv.url, cookies=Api(srv.url).sign_up().http.cookies, timeout=30)

    async def post(k: int) -> None:
        for i in range(50):
            r = await client.post(f"/api/threads/{tid}/posts", json={"body": f"{k}.{i} {big}"})
            assert r.status_code == 201
    await asyncio.gather(*(post(k) for k in range(4)))
    posted.set()
    await fast.wait_seq(tid, 201, timeout=30)
    assert fast.seqs(tid) == list(range(2, 202))
    await client.aclose()

    # What the slow socket was sent must end with a close frame carrying 1013.
    data = head + await reading
    slow.close()
    print("slow client got", len(data), "bytes;", data.count(b'"type":"event"'), "events;",
          data.count(b'subscribed'), "subscribed")
    assert b"\x88" in data, "no close frame reached the slow client"
    close_at = data.rindex(b"\x88")
    code = int.from_bytes(data[close_at + 2:close_at + 4], "big")
    assert code == 1013
    metrics = httpx.get(srv.url + "/metrics").text
    assert "parley_ws_slow_consumer_closes_total 1.0" in metrics


async def test_bad_frames_get_error_frames_and_the_server_keeps_going(server, forum, watchers):
    """Malformed JSON, unknown types, bad fields, a missing thread, guest typing and binary frames each get
    the contract's error frame; a 20 KiB frame closes that socket with 1009; others keep working."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    w = await watchers(server.ws_url)
    cases = [
        ("not json", "bad_json"),
        (json.dumps({"type": "dance"}), "unknown_type"),
        (json.dumps({"thread": 1}), "unknown_type"),
        (json.dumps({"type": "subscribe", "thread": "seven"}), "invalid"),
        (json.dumps({"type": "subscribe", "thread": -3}), "invalid"),
        (json.dumps({"type": "subscribe", "thread": 10**30}), "invalid"),
        (json.dumps([1, 2, 3]), "invalid"),
        (json.dumps({"type": "subscribe", "thread": 987654321}), "not_found"),
        (json.dumps({"type": "typing", "thread": tid}), "forbidden"),
    ]
    for text, code in cases:
        start = len(w.frames)
        await w.send(text)
        frame = await w.wait_for(lambda f: f["type"] == "error", start=start)
        assert frame["code"] == code, (text, frame)
        assert isinstance(frame["message"], str)
    start = len(w.frames)
    await w.ws.send(b"\x00\x01binary")
    assert (await w.wait_for(lambda f: f["type"] == "error", start=start))["code"] == "bad_frame"
    await w.send({"type": "ping", "id": {"still": "here"}})
    assert (await w.wait_for(lambda f: f["type"] == "pong"))["id"] == {"still": "here"}

    big = await watchers(server.ws_url)
    await big.send("x" * 20 * 1024)
    for _ in range(50):
        if big.closed is not None:
            break
        await asyncio.sleep(0.1)
    assert big.closed == 1009
    await w.subscribe(tid)
    await asyncio.to_thread(alice.post, f"/api/threads/{tid}/posts", json={"body": "still live"})
    await w.wait_seq(tid, 2)


async def test_foreign_origin_handshake_is_refused(server, watchers):
    """The /ws handshake with an Origin that is not allowed is refused with 403."""
    import websockets
    try:
        await websockets.connect(server.ws_url, additional_headers={"Origin": "https://evil.example"})
    except websockets.InvalidStatus as exc:
        assert exc.response.status_code == 403
    else:
        raise AssertionError("a foreign origin was accepted")
    w = await watchers(server.ws_url, origin=server.url)
    assert w.frames[0]["type"] == "hello"
