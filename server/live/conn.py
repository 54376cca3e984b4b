"""One open websocket, as the hub sees it: send(frame) never awaits (ARCHITECTURE rule 4).

Two ways to put a frame on the wire:

* RawConn, the fast path. Under uvicorn's websockets-sansio protocol without
  permessage-deflate, a server→client text frame is the same bytes for every
  socket (server frames are unmasked), so Frame builds them once and RawConn
  hands them straight to the socket's asyncio transport: one transport.write()
  per socket per event, no task, no queue, no per-socket encoding. The
  transport's own write buffer is the bounded queue: past
  `max_pending` bytes the socket is closed with 1013. This module is the only
  place that reaches into uvicorn's protocol object; everything it touches is
  checked in `raw_protocol()` and anything unexpected falls back to AsgiConn.
* AsgiConn, the portable path: a bounded deque and one sender task calling
  the ASGI `send`. Used under any other server, or when compression is on.

`parley serve` runs uvicorn with ParleyWsProtocol (below): uvicorn's
websockets-sansio protocol whose permessage-deflate, when on, has a window and
a memory level of our own choosing rather than whatever the installed uvicorn
picks (bench/README.md, "Compression and memory"), and whose control and
continuation frames (ping, pong, fragments), which uvicorn answers or buffers
without the app, count toward the socket's flood bucket like any other frame.
Its handshake request arrives parsed (handshake_request(), ParleyWsProtocol.upgraded):
uvicorn writes the request httptools has just parsed back out as bytes for
websockets to parse a second time, which was most of a socket's handshake cost
that was not Parley's (bench/README.md, "The socket floor").
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.utils import is_ssl
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS, Request
from websockets.protocol import Protocol
from websockets.server import ServerProtocol

from ..errors import WS_1013_TRY_AGAIN_LATER
from ..httpguard import addresses

log = logging.getLogger(__name__)
WS_LOGGER = logging.getLogger("uvicorn.error.websocket")

# How long a closing socket may take to accept our close frame before the TCP connection is dropped.
CLOSE_TIMEOUT = 5.0
# AsgiConn: how long its sender may go without handing a frame to the server before a queue over
# max_pending means the client is not reading (a burst of a healthy socket drains well within it),
# and how far over max_pending a queue may grow meanwhile (the kernel's share on the raw path).
STALL_SECONDS = 1.0
BURST_FACTOR = 8

_ids = itertools.count(1)


class Frame:
    """A JSON text frame encoded once: .json for ASGI, .wire for raw transports (built on first use).

    Frame.joined(frames) is several frames as one write: .wire is their wire bytes back to back, and
    .parts lists them for paths that must send them one by one.
    """

    __slots__ = ("json", "_wire", "_text", "parts", "sse")

    def __init__(self, json: bytes) -> None:
        self.json = json
        self._wire: bytes | None = None
        self._text: str | None = None
        self.parts: list[Frame] | None = None
        # The frame as one SSE message, built by the first stream that sends it (sse.py), shared by the rest:
        # formatting it per stream was a fifth of an SSE fan-out's CPU (bench/README.md "SSE against websockets").
        self.sse: bytes | None = None

    @classmethod
    def joined(cls, frames: list[Frame]) -> Frame:
        frame = cls(b"")
        frame._wire = b"".join(f.wire for f in frames)
        frame.parts = frames
        return frame

    @property
    def wire(self) -> bytes:
        wire = self._wire
        if wire is None:
            n = len(self.json)
            if n < 126:
                head = bytes((0x81, n))
            elif n < 65536:
                head = bytes((0x81, 126)) + n.to_bytes(2, "big")
            else:
                head = bytes((0x81, 127)) + n.to_bytes(8, "big")
            wire = self._wire = head + self.json
        return wire

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.json.decode()
        return self._text


class Conn:
    """What the hub needs from a socket. Subclasses implement write() and close()."""

    __slots__ = ("id", "user", "session", "epoch", "rooms", "feeds", "alive", "max_pending", "close_code")

    def __init__(self, user: dict[str, Any] | None, max_pending: int) -> None:
        self.id = next(_ids)
        self.user = user
        self.session: str | None = None  # the key (hash) of the session it was opened with
        self.epoch = 0  # that session's credential epoch (store/sessions.py; Hub.on_user_message)
        self.rooms: set[int] = set()
        self.feeds: set[str] | None = None  # feed channels it subscribed (live/feeds.py); None until the first
        self.alive = True
        self.max_pending = max_pending
        self.close_code: int | None = None

    def send(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self, code: int, reason: str = "") -> None:
        raise NotImplementedError

    def _died(self) -> None:
        # The socket's handler notices (its receive() ends) and removes it from the hub and presence.
        self.alive = False

    def pending_bytes(self) -> int:
        raise NotImplementedError

    async def drained(self, level: int, timeout: float = 30.0) -> bool:
        """Wait until at most `level` bytes wait to be sent (a replay sends its next chunk only then).

        False when the socket died, or did not drain in `timeout` (then it is closed with 1013 like any
        client too slow to keep up)."""
        deadline = time.monotonic() + timeout
        while self.alive and self.pending_bytes() > level:
            if time.monotonic() > deadline:
                self.close(WS_1013_TRY_AGAIN_LATER, "too slow; reconnect with since")
                return False
            await asyncio.sleep(0.01)
        return self.alive


# permessage-deflate, per socket: the server's LZ77 window (2**11 = 2 KiB; it also bounds what the client
# needs) and zlib's memLevel 4 make an idle compressed socket's deflate state ~22 KiB instead of ~38 KiB
# (12 and 5) or ~300 KiB (zlib's 15 and 8); the client's window is bounded likewise when it offers
# client_max_window_bits (browsers do), so reading its frames costs a 2 KiB window, not 32 KiB. Frames are
# small JSON: the ratio barely changes (bench/README.md, "Compression and memory").
DEFLATE_WINDOW_BITS = 11
DEFLATE_MEM_LEVEL = 4


def deflate_factory() -> ServerPerMessageDeflateFactory:
    return ServerPerMessageDeflateFactory(server_max_window_bits=DEFLATE_WINDOW_BITS,
                                          client_max_window_bits=DEFLATE_WINDOW_BITS,
                                          compress_settings={"memLevel": DEFLATE_MEM_LEVEL})


class Inbox:
    """The part of asyncio.Queue that uvicorn's websocket protocol uses (put_nowait, get, empty, qsize), for
    its one reader (the app's receive()), in ~100 bytes instead of ~3 KiB.

    An asyncio.Queue is four deques (its items, getters, putters, and its `finished` Event's waiters) of
    ~620 bytes each even when empty, per open socket; an idle socket holds no message, so the deque of
    items exists only while one waits (bench/README.md, "The socket floor")."""

    __slots__ = ("items", "getter")

    def __init__(self) -> None:
        self.items: deque[Any] | None = None
        self.getter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self.items is None:
            self.items = deque()
        self.items.append(item)
        getter = self.getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def get(self) -> Any:
        while not self.items:
            getter = self.getter = asyncio.get_running_loop().create_future()
            try:
                await getter
            finally:
                self.getter = None
        items = self.items
        item = items.popleft()
        if not items:
            self.items = None
        return item

    def empty(self) -> bool:
        return not self.items

    def qsize(self) -> int:
        return len(self.items) if self.items else 0


class Gate:
    """The part of asyncio.Event that uvicorn's protocol uses for `writable` (set, clear, is_set, wait),
    without the Event's deque of waiters (~620 bytes) per socket: a list only while someone waits."""

    __slots__ = ("open", "waiters")

    def __init__(self) -> None:
        self.open = False
        self.waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self.open

    def set(self) -> None:
        self.open = True
        waiters, self.waiters = self.waiters, None
        for w in waiters or ():
            if not w.done():
                w.set_result(None)

    def clear(self) -> None:
        self.open = False

    async def wait(self) -> bool:
        if self.open:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self.waiters is None:
            self.waiters = []
        self.waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            if self.waiters is not None and waiter in self.waiters:
                self.waiters.remove(waiter)


class ParleyWsProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol with permessage-deflate bounded by deflate_factory(), and every
    frame the app never sees (ping, pong, continuation) passed to `frame_counter` (ws.Session.count, set by
    count_frames()): when it answers False the socket is closing with 1008 and the frame is dropped."""

    frame_counter: Callable[[], bool] | None = None

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn logs an INFO line per accepted socket ('"WebSocket /ws" [accepted]'), which the handler's
        # filter (cli.QuietSockets) then dropped: the record was built and formatted for nothing, per
        # socket. Under this logger (WARNING, cli.setup_logging) it is not built; errors still are.
        self.logger = WS_LOGGER
        # Per socket for as long as it is open: the light equivalents of uvicorn's Queue and Event.
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Gate()  # type: ignore[assignment]
        self.writable.set()
        if config.ws_per_message_deflate:
            self.conn = ServerProtocol(extensions=[deflate_factory()], max_size=config.ws_max_size,
                                       logger=logging.getLogger("uvicorn.error"))

    def connection_made(self, transport: Any) -> None:
        # uvicorn's, with the addresses asyncio's transport already holds (httpguard.addresses).
        self.connections.add(self)
        self.transport = transport
        self.server, self.client = addresses(transport)
        self.scheme = "wss" if is_ssl(transport) else "ws"

    def upgraded(self, request: Request) -> None:
        """Take the connection over with its handshake request already parsed (handshake_request()): what
        data_received() does with the request's bytes, less parsing them. websockets' parser, which would
        read the request line and headers first, starts at the frames instead (ServerProtocol.parse reads the
        request, appends it to the events and goes on with Protocol.parse: that last step alone)."""
        conn = self.conn
        conn.parser = Protocol.parse(conn)
        next(conn.parser)
        self.handle_connect(request)

    def _counted(self) -> bool:
        counter = self.frame_counter
        return counter is None or self.close_sent or counter()

    def handle_ping(self) -> None:
        if self._counted():
            super().handle_ping()  # the pong websockets queued

    def handle_pong(self, event: Any) -> None:
        if self._counted():
            super().handle_pong(event)

    def handle_cont(self, event: Any) -> None:
        if self._counted():
            super().handle_cont(event)


# websockets' own checks of a request line's and header's bytes (http11.parse_headers).
_TOKEN = re.compile(rb"[-!#$%&\'*+.^_`|~0-9a-zA-Z]+")
_VALUE = re.compile(rb"[\x09\x20-\x7e\x80-\xff]*")


def handshake_request(method: str, url: bytes, headers: list[tuple[bytes, bytes]]) -> Request | None:
    """The websockets Request that websockets' parser (http11.Request.parse) makes of the request uvicorn's
    HTTP protocol parsed, made without writing it out and parsing it again; None for any request that parser
    would refuse or that this does not check for (another method, a body, a line or a header count past its
    limits, bytes outside its alphabets, a path not ASCII): those go the library's way, with its answers."""
    if method != "GET" or len(headers) > MAX_NUM_HEADERS or len(url) + 16 > MAX_LINE_LENGTH:
        return None
    try:
        path = url.decode("ascii")
    except UnicodeDecodeError:
        return None
    parsed = Headers()
    for name, raw in headers:
        value = raw.strip(b" \t")
        if (len(name) + len(raw) + 4 > MAX_LINE_LENGTH or not _TOKEN.fullmatch(name)
                or not _VALUE.fullmatch(value)):
            return None
        parsed.set_insecure(name.decode("ascii"), value.decode("iso-8859-1"))
    if "Transfer-Encoding" in parsed or not set(parsed.get_all("Content-Length")) <= {"0"}:
        return None
    return Request(path, parsed)


def count_frames(send: Any, counter: Callable[[], bool] | None) -> None:
    """Have the protocol behind `send` (when it is ours) pass its control frames to `counter`; None stops it."""
    proto = getattr(send, "__self__", None)
    if isinstance(proto, ParleyWsProtocol):
        proto.frame_counter = counter


def shed(send: Any, scope: dict[str, Any]) -> None:
    """After the handshake, let go of what it left on the socket that nothing reads again: uvicorn's
    protocol keeps the parsed request and the response (websockets' Request and Response, each with its
    headers) and the scope keeps the request's headers, for as long as the socket is open. A browser's
    headers (cookies, user agent) are most of a KiB, per idle socket (bench/README.md, "The socket floor")."""
    proto = getattr(send, "__self__", None)
    if isinstance(proto, WebSocketsSansIOProtocol) and proto.handshake_complete:
        proto.request = None  # type: ignore[assignment]
        proto.response = None  # type: ignore[assignment]
    # uvicorn reads the scope after the handshake only for its path and client (log lines); the app read the
    # rest before accepting (ws.endpoint).
    for key in SHED_SCOPE_KEYS:
        scope.pop(key, None)


SHED_SCOPE_KEYS = ("headers", "extensions", "state", "asgi", "subprotocols", "raw_path")


def raw_protocol(send: Any, compression: bool) -> Any | None:
    """uvicorn's WebSocketsSansIOProtocol behind `send`, if the fast path may use it."""
    proto = getattr(send, "__self__", None)
    if compression or proto is None or not isinstance(proto, WebSocketsSansIOProtocol):
        return None
    conn = getattr(proto, "conn", None)
    if getattr(proto, "transport", None) is None or conn is None or getattr(conn, "extensions", None):
        return None  # permessage-deflate negotiated: frames differ per socket
    if not all(hasattr(proto, a) for a in ("close_sent", "close_timer", "queue", "loop")):
        return None
    return proto


class RawConn(Conn):
    __slots__ = ("proto", "transport", "sent")

    def __init__(self, proto: Any, user: dict[str, Any] | None, max_pending: int) -> None:
        super().__init__(user, max_pending)
        self.proto = proto
        self.transport = proto.transport
        self.sent = 0

    def send(self, frame: Frame) -> None:
        if not self.alive:
            return
        transport = self.transport
        if transport.is_closing() or self.proto.close_sent:
            self._died()
            return
        transport.write(frame.wire)
        if transport.get_write_buffer_size() > self.max_pending:
            log.info("ws %d too slow (%d bytes pending): closing with 1013", self.id,
                     transport.get_write_buffer_size())
            self.close(WS_1013_TRY_AGAIN_LATER, "too slow; reconnect with since")

    def pending_bytes(self) -> int:
        return self.transport.get_write_buffer_size()  # type: ignore[no-any-return]

    def reap_if_stuck(self) -> None:
        """A transport closing with data it can never flush (the peer vanished) is dropped after a timeout."""
        proto = self.proto
        if self.transport.is_closing() and proto.close_timer is None:
            proto.close_timer = proto.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

    def close(self, code: int, reason: str = "") -> None:
        """Close now, without awaiting: queue the close frame, wake the handler, drop TCP after a timeout."""
        proto = self.proto
        self.close_code = code
        if not proto.close_sent and not self.transport.is_closing():
            try:
                proto.conn.send_close(code, reason)
                self.transport.write(b"".join(proto.conn.data_to_send()))
            except Exception:  # the protocol already left the OPEN state
                pass
            proto.close_sent = True
            proto.queue.put_nowait({"type": "websocket.disconnect", "code": code})
            if proto.close_timer is None:
                proto.close_timer = proto.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)
        self._died()


class AsgiConn(Conn):
    """Portable fallback: a bounded queue drained by one sender task.

    The raw path's bound is the transport's buffer, which only grows once the kernel's socket buffer
    is full. This queue has no kernel in front of it: a burst of events arrives in one loop turn,
    before the sender has run. So a queue over max_pending closes the socket only when the sender
    has been stuck for STALL_SECONDS (the client is not reading), or past BURST_FACTOR × max_pending
    whatever the reason (memory stays bounded).
    """

    __slots__ = ("asgi_send", "queue", "pending", "wakeup", "task", "progress", "clock")

    def __init__(self, asgi_send: Any, user: dict[str, Any] | None, max_pending: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(user, max_pending)
        self.asgi_send = asgi_send
        self.clock = clock
        self.queue: deque[tuple[str, int]] = deque()  # (text, its size in bytes as counted in pending)
        self.pending = 0
        self.progress = clock()  # the last time the sender handed a frame over, or found none
        self.wakeup = asyncio.Event()
        self.task = asyncio.create_task(self._sender())

    def pending_bytes(self) -> int:
        return self.pending

    def send(self, frame: Frame) -> None:
        if not self.alive:
            return
        if frame.parts is not None:
            for part in frame.parts:
                self.send(part)
            return
        # Counted in bytes both ways: a count in characters going out would drift upwards with
        # non-ASCII text until a healthy socket looked too slow.
        size = len(frame.json)
        if not self.queue:
            self.progress = self.clock()  # an idle sender is not a stuck one
        self.queue.append((frame.text, size))
        self.pending += size
        if self.pending > self.max_pending and (
                self.pending > BURST_FACTOR * self.max_pending
                or self.clock() - self.progress > STALL_SECONDS):
            self.close(WS_1013_TRY_AGAIN_LATER, "too slow; reconnect with since")
            return
        self.wakeup.set()

    async def _sender(self) -> None:
        try:
            while True:
                await self.wakeup.wait()
                self.wakeup.clear()
                while self.queue and self.close_code is None:
                    text, size = self.queue.popleft()
                    self.pending -= size
                    await self.asgi_send({"type": "websocket.send", "text": text})
                    self.progress = self.clock()
                if self.close_code is not None:
                    await asyncio.wait_for(self.asgi_send({"type": "websocket.close", "code": self.close_code}),
                                           CLOSE_TIMEOUT)
                    return
        except Exception:
            self._died()

    def close(self, code: int, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self.queue.clear()
            self.wakeup.set()
        self._died()
