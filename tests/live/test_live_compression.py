"""With permessage-deflate on, sockets go through the portable AsgiConn path: a healthy reader of
non-ASCII text keeps up and is never taken for a slow consumer."""

from __future__ import annotations

import asyncio

import pytest

from support.api import Api, new_thread, unique
from support.databases import make_moderator


@pytest.fixture(scope="module")
def ws_compression() -> bool:
    """Compressed only: these tests turn compression on themselves (tests/live/conftest.py runs the rest twice)."""
    return True


async def test_non_ascii_frames_do_not_make_a_healthy_socket_look_slow(spawn, pg_url, watchers):
    """60 replies of 3 KB of 'é' each through a compressed socket with a 64 KiB pending cap: all arrive, no 1013."""
    proc = spawn(PARLEY_WS_COMPRESSION="on", PARLEY_WS_MAX_PENDING_BYTES="65536")
    mod = await asyncio.to_thread(lambda: Api(proc.url).sign_up())
    make_moderator(pg_url, mod.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    thread = await asyncio.to_thread(new_thread, mod, slug)
    tid = thread["thread"]["id"]
    w = await watchers(proc.ws_url)
    assert (await w.subscribe(tid))["type"] == "subscribed"
    author = await asyncio.to_thread(lambda: Api(proc.url).sign_up())
    for i in range(60):
        r = await asyncio.to_thread(author.post, f"/api/threads/{tid}/posts", json={"body": f"{i} " + "é" * 1500})
        assert r.status_code == 201, r.text
        await w.wait_seq(tid, i + 2, timeout=20)  # read as it comes: a healthy, keeping-up reader
    assert w.seqs(tid) == list(range(2, 62))
    assert w.closed is None


def handshake(port: int, offer: str) -> tuple[bytes, bytes]:
    """A real /ws handshake offering `offer`; (the status line, the Sec-WebSocket-Extensions answered)."""
    import base64
    import os
    import socket
    key = base64.b64encode(os.urandom(16)).decode()
    head = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    ext = [v.split(b":", 1)[1].strip() for v in lines[1:] if v.lower().startswith(b"sec-websocket-extensions:")]
    return lines[0], ext[0] if ext else b""


async def test_negotiated_deflate_has_a_bounded_window(spawn, watchers):
    """Whatever the client offers, the answer bounds the server's window to 2**11 (and the client's, when the
    client lets the server choose), so an idle compressed socket costs ~22 KiB of deflate state; frames still
    flow both ways."""
    from server.live.conn import DEFLATE_MEM_LEVEL, DEFLATE_WINDOW_BITS, deflate_factory
    assert (DEFLATE_WINDOW_BITS, DEFLATE_MEM_LEVEL) == (11, 4)
    assert deflate_factory().compress_settings == {"memLevel": 4}
    proc = spawn(PARLEY_WS_COMPRESSION="on")
    cases = {  # the offer → the parameters the answer must carry
        "permessage-deflate; client_max_window_bits": {"server_max_window_bits=11", "client_max_window_bits=11"},
        "permessage-deflate": {"server_max_window_bits=11"},
        "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15": {
            "server_max_window_bits=11", "client_max_window_bits=11"},
        "permessage-deflate; server_max_window_bits=9": {"server_max_window_bits=9"},
        "permessage-deflate; server_no_context_takeover; client_max_window_bits": {
            "server_no_context_takeover", "client_max_window_bits=11"},
    }
    for offer, wanted in cases.items():
        status, ext = await asyncio.to_thread(handshake, proc.port, offer)
        assert status.startswith(b"HTTP/1.1 101"), (offer, status)
        params = {p.strip() for p in ext.decode().split(";")}
        assert "permessage-deflate" in params and wanted <= params, (offer, ext)
        bits = [int(p.split("=")[1]) for p in params if p.startswith("server_max_window_bits=")]
        assert bits and bits[0] <= 11, (offer, ext)
    w = await watchers(proc.ws_url)
    assert w.ws.protocol.extensions, "permessage-deflate was negotiated"
    await w.send({"type": "ping", "id": "x" * 3000})
    assert (await w.wait_for(lambda f: f["type"] == "pong"))["id"] == "x" * 3000
