"""Resource limits: big bodies refused before being read, slow and partial requests, subscriptions per socket,
connections per IP."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from support.api import Api, new_thread


def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 30) -> bytes:
    """Send a request head and part of a body on a plain socket; return the answer's first bytes. The rest of
    the body never comes, so a server that waited for it would answer nothing (the socket times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def head(method: str, path: str, port: int, *extra: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_declared_10_mb_body_is_refused_at_once(server: Any) -> None:
    """Content-Length: 10 MB with only 100 bytes sent gets a 413 right away (the body is never waited for)."""
    port = int(server.url.rsplit(":", 1)[1])
    answer = raw_request(port, head("POST", "/api/users", port, "Content-Length: 10485760"), b"{" + b" " * 99)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_declared_10_mb_body_refused_on_signed_in_route(forum: dict[str, Any]) -> None:
    """The same on a signed-in route (posting): 413 without reading, after the cookie is checked."""
    mod: Api = forum["mod"]
    thread_id = new_thread(mod, forum["category"])["thread"]["id"]
    port = int(forum["url"].rsplit(":", 1)[1])
    answer = raw_request(port, head("POST", f"/api/threads/{thread_id}/posts", port, "Content-Length: 10485760",
                                          f"Cookie: parley_session={mod.session_cookie}"), b"{" * 100)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_chunked_body_over_64_kib_is_cut_off(server: Any) -> None:
    """A chunked body with no length is refused with 413 as soon as it passes 64 KiB, not when it ends."""
    port = int(server.url.rsplit(":", 1)[1])
    chunk = b"4000\r\n" + b" " * 0x4000 + b"\r\n"  # 16 KiB chunks; 5 of them pass 64 KiB and the body never ends
    answer = raw_request(port, head("POST", "/api/users", port, "Transfer-Encoding: chunked"), chunk * 5)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_body_just_under_the_limit_is_read(server: Any) -> None:
    """A 60 KiB body is read and judged on its content (422 for an over-long display name), not refused."""
    body = {"username": "fits_under", "password": "correct horse battery", "display_name": "x" * 60000}
    r = httpx.post(server.url + "/api/users", json=body)
    assert r.status_code == 422 and r.json()["error"]["field"] == "display_name"


def test_non_json_state_change_is_415(server: Any) -> None:
    """A state-changing request that is not application/json is 415 (a plain HTML form cannot post here)."""
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = httpx.post(server.url + "/api/users", content=b'{"username":"a"}', headers={"Content-Type": ctype})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"


def test_slow_clients_do_not_starve_others(server: Any) -> None:
    """200 connections dribbling a request head one byte at a time do not hold up a normal request: it is
    answered each time, and none of theirs is (still waiting, or closed at the head deadline)."""
    port = int(server.url.rsplit(":", 1)[1])
    slow = []

    def answered(s: socket.socket) -> bool:
        try:
            return s.recv(1, socket.MSG_DONTWAIT) != b""  # b"": closed by the head deadline, not answered
        except BlockingIOError:
            return False  # nothing to read: held open, waiting for the rest of its head
        except ConnectionResetError:
            return False
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A")
            slow.append(s)
        for _ in range(5):
            for s in slow:
                try:
                    s.sendall(b"a")
                except OSError:
                    pass  # closed at the head deadline (a loaded machine may take that long)
            assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200
        assert not any(answered(s) for s in slow)
    finally:
        for s in slow:
            s.close()


@pytest.mark.slow
def test_idle_connection_after_a_request_is_closed(spawn: Any) -> None:
    """A keep-alive connection left idle after its request is closed by the server (uvicorn timeout_keep_alive)."""
    srv = spawn()
    port = int(srv.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status":"ok"}'):
            answer += s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        assert s.recv(4096) == b""  # closed by the server (a socket timeout, 60 s, would fail the test)


def test_slowloris_request_head_is_timed_out(server: Any) -> None:
    """A client that sends its request head a byte every half second is cut off within 15 s."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                s.sendall(b"X-Slow: a\r\n"[: 1])
            except OSError:
                return  # the server hung up: defended
            time.sleep(0.5)
            s.setblocking(False)
            try:
                if s.recv(4096) == b"":
                    return
            except BlockingIOError:
                pass
            except OSError:
                return
            finally:
                s.setblocking(True)
        pytest.fail("the slow request head was never timed out")


def test_oversized_request_head_is_refused(server: Any) -> None:
    """A request head of 1 MiB (one huge header) is refused (400/431 or the connection closed), not buffered."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
            answer = s.recv(4096)
        except OSError:
            return
    assert not answer.startswith(b"HTTP/1.1 200"), answer[:100]


async def test_101st_subscription_is_refused(forum: dict[str, Any]) -> None:
    """One socket may watch 100 threads; the 101st subscribe gets error too_many_subscriptions, and the socket
    keeps working (unsubscribe one, then it may subscribe again)."""
    mod: Api = forum["mod"]
    ids = [new_thread(mod, forum["category"], title=f"t{i}")["thread"]["id"] for i in range(101)]
    ws_url = forum["url"].replace("http://", "ws://") + "/ws"
    async with connect(ws_url) as ws:
        for thread_id in ids:
            await ws.send(json.dumps({"type": "subscribe", "thread": thread_id}))
        subscribed, errors = set(), []
        while len(subscribed) + len(errors) < 101:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if msg["type"] == "subscribed":
                subscribed.add(msg["thread"])
            elif msg["type"] == "error":
                errors.append(msg)
        assert len(subscribed) == 100
        assert [e["code"] for e in errors] == ["too_many_subscriptions"] and errors[0]["thread"] == ids[100]
        await ws.send(json.dumps({"type": "unsubscribe", "thread": ids[0]}))
        await ws.send(json.dumps({"type": "subscribe", "thread": ids[100]}))
        while (msg := json.loads(await asyncio.wait_for(ws.recv(), 20)))["type"] != "subscribed":
            assert msg["type"] != "error", msg
        assert msg["thread"] == ids[100]


async def test_connections_per_ip_are_capped(spawn: Any) -> None:
    """Above PARLEY_MAX_CONNECTIONS_PER_IP sockets from one address the handshake is refused (403); closing one
    makes room again."""
    srv = spawn(PARLEY_MAX_CONNECTIONS_PER_IP="3")
    sockets = [await connect(srv.ws_url) for _ in range(3)]
    try:
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "hello"
        with pytest.raises(InvalidStatus) as info:
            await connect(srv.ws_url)
        assert info.value.response.status_code == 403
        await sockets.pop().close()
        await asyncio.sleep(0.2)
        sockets.append(await connect(srv.ws_url))
        assert json.loads(await sockets[-1].recv())["type"] == "hello"
        assert httpx.get(srv.url + "/healthz").status_code == 200  # plain HTTP is not counted
    finally:
        for ws in sockets:
            await ws.close()


async def test_connections_per_ip_count_an_ipv6_clients_64_as_one_address(spawn: Any) -> None:
    """The socket cap counts an IPv6 client by its /64 (auth.address_key): two addresses of one /64 fill a
    cap of 2 and a third address in it is refused (403); a socket from another /64 is welcome."""
    srv = spawn(PARLEY_MAX_CONNECTIONS_PER_IP="2", PARLEY_TRUSTED_PROXIES="127.0.0.1/32")

    def from_(address: str) -> Any:
        return connect(srv.ws_url, additional_headers={"X-Forwarded-For": address})

    sockets = [await from_("2001:db8:5:6::1"), await from_("2001:db8:5:6:ffff::2")]
    try:
        for ws in sockets:
            assert json.loads(await ws.recv())["type"] == "hello"
        with pytest.raises(InvalidStatus) as info:
            await from_("2001:db8:5:6:1:2:3:4")
        assert info.value.response.status_code == 403
        sockets.append(await from_("2001:db8:5:7::1"))
        assert json.loads(await sockets[-1].recv())["type"] == "hello"
    finally:
        for ws in sockets:
            await ws.close()


def trickle(port: int, head: bytes, bound: float = 60.0) -> bytes:
    """Send a request head, then a body byte every 0.2 s until the server closes the connection; everything
    it answered. Fails if the connection is still open after `bound` seconds (a generous bound, not a timing)."""
    import select
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        stop = time.monotonic() + bound
        while time.monotonic() < stop:
            if select.select([s], [], [], 0.2)[0]:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    return data
                if not chunk:
                    return data
                data += chunk
                continue
            try:
                s.sendall(b"1" if b"chunked" not in head else b"1\r\n \r\n")
            except OSError:  # the server hung up while we were sending: read what it said
                try:
                    while chunk := s.recv(65536):
                        data += chunk
                except OSError:
                    pass
                return data
    pytest.fail(f"the trickled request was still open after {bound} s; got {data[:200]!r}")


def test_trickled_body_is_answered_408_and_closed(spawn: Any) -> None:
    """A body sent a byte at a time past PARLEY_BODY_TIMEOUT_SECONDS: 408 in the JSON error shape and the
    connection closed, whether the body has a length or is chunked, on a guest or a signed-in route; a handler
    that answered without reading the body (413, a GET) does not keep the connection open either."""
    srv = spawn(PARLEY_BODY_TIMEOUT_SECONDS="2")
    port = int(srv.url.rsplit(":", 1)[1])
    api = Api(srv.url).sign_up()
    cookie = f"Cookie: parley_session={api.session_cookie}"
    for path, extra in (("/api/users", ["Content-Length: 400"]), ("/api/users", ["Transfer-Encoding: chunked"]),
                        ("/api/session", ["Content-Length: 400"]),
                        ("/api/threads/1/posts", ["Content-Length: 400", cookie]),
                        ("/api/me/password", ["Content-Length: 400", cookie])):
        method = "PUT" if path == "/api/me/password" else "POST"
        answer = trickle(port, head(method, path, port, *extra))
        assert answer.startswith(b"HTTP/1.1 408"), (path, extra, answer[:300])
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["error"]["code"] == "request_timeout", body
    for method, path, extra, status in (("POST", "/api/users", ["Content-Length: 10485760"], b"413"),
                                        ("GET", "/healthz", ["Content-Length: 400"], b"200"),
                                        ("POST", "/api/threads/1", ["Content-Length: 400"], b"405")):
        answer = trickle(port, head(method, path, port, *extra))
        assert answer.startswith(b"HTTP/1.1 " + status), (path, answer[:300])
    assert httpx.get(srv.url + "/healthz").status_code == 200
