"""The websocket handshake arrives parsed (live/conn.handshake_request, httpguard's upgrade): uvicorn's HTTP protocol
hands Parley's websocket protocol the request httptools parsed instead of bytes for websockets to parse again. A real
uvicorn on loopback with `parley serve`'s two protocol classes and a small ASGI app; websockets' own request parser
is watched to see which way each handshake went."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
import websockets
from websockets.http11 import Request

from server.httpguard import GuardedHttpToolsProtocol
from server.live.conn import ParleyWsProtocol, handshake_request
from support.ws import library_request


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept, then send what the handshake's scope held."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    seen = {"path": scope["path"], "query": scope["query_string"].decode(),
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]}
    await send({"type": "websocket.send", "text": json.dumps(seen)})
    await receive()


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    """A uvicorn on a free loopback port with the protocols `parley serve` uses (deflate per the param)."""
    deflate = getattr(request, "param", False)
    config = uvicorn.Config(_app, host="127.0.0.1", port=0, http=GuardedHttpToolsProtocol, ws=ParleyWsProtocol,
                            ws_per_message_deflate=deflate, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each request websockets' own parser read ("parsed") or refused in this process (the client parses
    responses, not requests)."""
    seen: list[str] = []
    original = Request.parse.__func__  # type: ignore[attr-defined]

    def spy(cls: type[Request], read_line: Any) -> Any:
        # Every protocol object starts a parse that waits for the first line: counted only once it ends.
        try:
            request = yield from original(cls, read_line)
        except Exception:
            seen.append("refused")
            raise
        seen.append("parsed")
        return request
    monkeypatch.setattr(Request, "parse", classmethod(spy))
    return seen


@pytest.mark.parametrize("served", [False, True], ids=["plain", "deflate"], indirect=True)
async def test_a_handshake_is_not_parsed_twice_and_the_app_sees_it_whole(served: int, parses: list[str],
                                                                        request: pytest.FixtureRequest) -> None:
    """A browser-like handshake reaches the app with its path, query and every header as sent (a repeated one, a
    Latin-1 value), websockets' request parser never runs, and with compression on permessage-deflate is
    negotiated as before."""
    extra = [("Cookie", "a=1"), ("Cookie", "b=2"), ("X-Note", "caf\xe9")]
    async with websockets.connect(f"ws://127.0.0.1:{served}/ws?thread=7", additional_headers=extra,
                                  origin="http://127.0.0.1", compression="deflate") as ws:
        seen = json.loads(await ws.recv())
        negotiated = [type(e).__name__ for e in ws.protocol.extensions]
    assert parses == []
    assert seen["path"] == "/ws" and seen["query"] == "thread=7"
    headers = seen["headers"]
    assert ["cookie", "a=1"] in headers and ["cookie", "b=2"] in headers
    assert ["x-note", "caf\xe9"] in headers and ["origin", "http://127.0.0.1"] in headers
    assert negotiated == (["PerMessageDeflate"] if request.node.callspec.params["served"] else [])


async def test_a_handshake_with_a_body_gets_the_librarys_own_answer(served: int, parses: list[str]) -> None:
    """A handshake carrying a body (Content-Length: 5) goes websockets' own way, parser and all, and is refused with
    its 400, as before the handshake arrived parsed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served)
    writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 b"Content-Length: 5\r\n\r\nhello")
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status.startswith(b"HTTP/1.1 400"), status
    assert parses == ["refused"]


_HEADERS = [(b"host", b"127.0.0.1:8000"), (b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="), (b"sec-websocket-version", b"13"),
            (b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"x-note", b"caf\xe9 "), (b"content-length", b"0")]


def test_the_parsed_request_is_the_one_the_library_would_parse() -> None:
    """handshake_request() gives the path and headers (order, repeats, Latin-1, trimmed) websockets' parser gives."""
    mine = handshake_request("GET", b"/ws?thread=7", _HEADERS)
    theirs = library_request(b"GET", b"/ws?thread=7", _HEADERS)
    assert mine is not None
    assert (mine.path, mine.method, list(mine.headers.raw_items())) == (
        theirs.path, theirs.method, list(theirs.headers.raw_items()))


@pytest.mark.parametrize(("method", "url", "headers"), [
    ("POST", b"/ws", _HEADERS),
    ("GET", "/ws/caf\xe9".encode(), _HEADERS),
    ("GET", b"/ws", [*_HEADERS, (b"content-length", b"5")]),
    ("GET", b"/ws", [*_HEADERS, (b"transfer-encoding", b"chunked")]),
    ("GET", b"/ws", [*_HEADERS, (b"bad name", b"x")]),
    ("GET", b"/ws", [*_HEADERS, (b"x", b"a\x00b")]),
    ("GET", b"/ws", [*_HEADERS, (b"x", b"v" * 9000)]),
    ("GET", b"/ws", [(b"x-%d" % i, b"v") for i in range(129)]),
], ids=["post", "non-ascii-path", "body", "chunked", "bad-name", "control-byte", "long-line", "129-headers"])
def test_requests_the_library_would_refuse_go_its_way(method: str, url: bytes,
                                                      headers: list[tuple[bytes, bytes]]) -> None:
    """Another method, a body, a line or header count past websockets' limits, bytes outside its alphabets or a
    path not ASCII: no parsed request, so uvicorn writes it out for websockets, whose answer it keeps."""
    assert handshake_request(method, url, headers) is None
