"""Server-sent events: `GET /api/stream?thread=ID` (CONTRACT rev. 3 "Drafts and transports"; docs/live.md
"Transports").

For networks where a websocket cannot open (a proxy that refuses the upgrade), the same frames over one plain
HTTP response: each SSE message's `data` is a frame as /ws sends it, and a thread event's `id` is its seq, so
the browser's EventSource resumes by itself with `Last-Event-ID` (or the page with `?since=`) through the
very subscribe a socket makes with `since` (hub.subscribe: replay, `subscribed`, then live events). An
SseConn is a Conn like any socket's: the hub, its rooms, the user channel, presence and the session sweep
deliver to it and close it without knowing the difference; there is no second delivery path. Writes go over
HTTP as always; the stream only listens (no typing frames are sent by it, so none are relayed from it).

The stream closes (ending the response) where a socket would close: an ended session (the message
`event: close` with data {"code": 4001} comes first, so the page does not reconnect blindly), a client too
slow to read (1013), the server shutting down. A comment line every heartbeat keeps proxies from timing
the response out and finds a vanished client.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .. import auth, limits, metrics, wire
from ..errors import (
    WS_1012_SERVICE_RESTART,
    WS_1013_TRY_AGAIN_LATER,
    WS_4001_SESSION_ENDED,
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    Unavailable,
)
from ..state import AppState
from ..store import categories as store_categories
from ..store import sessions as store_sessions
from ..store import users as store_users
from .conn import Conn, Frame
from .ws import FEED

log = logging.getLogger(__name__)

_EVENT = b'{"type":"event","thread":'
RETRY_MS = 2000  # what EventSource waits before it reconnects by itself (the page's back-off is slower)


def message(frame: bytes) -> bytes:
    """One SSE message: `id: SEQ` for a thread event (the resume point the browser sends back as
    Last-Event-ID), then the frame as `data` (JSON has no raw newline, so it is one data line)."""
    if frame.startswith(_EVENT):
        return b"id: %d\ndata: %s\n\n" % (wire.frame_seq(frame), frame)
    return b"data: %s\n\n" % frame


_open: set[SseConn] = set()  # this process's open streams (stop_all)


def stop_all() -> None:
    """The server is stopping (uvicorn asked its connections to finish: httpguard.py): end every stream now,
    as uvicorn closes every websocket with 1012, instead of holding the graceful shutdown to its timeout.
    EventSource comes back by itself, with Last-Event-ID, to whatever serves next."""
    for conn in list(_open):
        conn.close(WS_1012_SERVICE_RESTART, "server restarting")


class SseConn(Conn):
    """A stream as the hub sees it: send() never awaits; a bounded queue of encoded SSE messages that the
    response's body drains. Past max_pending bytes the stream closes with 1013 (the client resumes)."""

    __slots__ = ("queue", "pending", "wakeup", "beat")

    def __init__(self, user: dict[str, Any] | None, max_pending: int) -> None:
        super().__init__(user, max_pending)
        self.queue: deque[bytes] = deque()
        self.pending = 0
        self.wakeup = asyncio.Event()
        self.beat = False  # the heartbeat timer fired: a keep-alive goes out unless something else does

    def send(self, frame: Frame) -> None:
        if not self.alive:
            return
        for part in frame.parts if frame.parts is not None else (frame,):
            data = part.sse
            if data is None:
                data = part.sse = message(part.json)
            self.queue.append(data)
            self.pending += len(data)
        if self.pending > self.max_pending:
            log.info("sse %d too slow (%d bytes pending): closing with 1013", self.id, self.pending)
            self.close(WS_1013_TRY_AGAIN_LATER, "too slow; reconnect with since")
            return
        self.wakeup.set()

    def pending_bytes(self) -> int:
        return self.pending

    def close(self, code: int, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self.queue.clear()
            self.pending = 0
        self._died()
        self.wakeup.set()

    def take(self) -> bytes:
        out = b"".join(self.queue)
        self.queue.clear()
        self.pending = 0
        return out


def _number(raw: str, low: int) -> int | None:
    """A decimal integer from `low` to BIGINT, or None."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(limits.BIGINT)):
        return None
    n = int(raw)
    return n if low <= n <= limits.BIGINT else None


def _since(request: Request) -> int | None:
    """Where to resume: the Last-Event-ID header (EventSource's own reconnect) or `?since=`; absent: from now."""
    raw = request.headers.get("last-event-id") or request.query_params.get("since")
    if raw is None or raw == "":
        return None
    if (since := _number(raw, 0)) is None:
        raise BadRequest("since (or Last-Event-ID) must be a seq: an integer from 0", code="bad_parameter",
                         field="since")
    return since


def _thread(request: Request) -> int | None:
    raw = request.query_params.get("thread")
    if raw is None:
        return None
    if (thread_id := _number(raw, 1)) is None:
        raise BadRequest(f"thread must be an integer from 1 to {limits.BIGINT}", code="bad_parameter",
                         field="thread")
    return thread_id


def _feed(request: Request) -> str | None:
    raw = request.query_params.get("feed")
    if raw is None:
        return None
    if FEED.fullmatch(raw) is None:
        raise BadRequest("feed must be all or category:SLUG", code="bad_parameter", field="feed")
    return raw


async def _feed_channel(st: AppState, feed: str) -> str:
    """The broker channel of a feed name (ws.Session.feed_channel's rule); 404 for a category nobody has."""
    if feed == "all":
        return st.channels.feed(None)
    async with st.hub.acquire() as db:
        cat_id = await store_categories.id_of(db, feed[len("category:"):])
    if cat_id is None:
        raise NotFound(f"No category {feed[len('category:'):]!r}")
    return st.channels.feed(cat_id)


async def stream(request: Request) -> Response:
    """GET /api/stream: the checks, then the stream set up as a socket is (hello, site presence, the user
    channel, the thread's subscription with its replay) before the first byte is answered, so a thread
    that does not exist is a plain 404, not a stream."""
    st: AppState = request.app.state.parley
    settings = st.settings
    if not auth.origin_allowed(request, settings):
        raise Forbidden("This origin may not listen here", code="bad_origin")
    if st.shutting_down:
        raise Unavailable("The server is restarting; try again shortly")
    thread_id, since, feed = _thread(request), _since(request), _feed(request)
    if thread_id is None and since is not None:
        raise BadRequest("since needs a thread", code="bad_parameter", field="since")
    # One cap for an address's sockets and streams together (PARLEY_MAX_CONNECTIONS_PER_IP).
    ip = auth.client_key(request, settings)
    if st.connections_per_ip[ip] >= settings.max_connections_per_ip:
        raise ApiError("Too many live connections from your address", code="too_many_connections", status=429,
                       headers={"Retry-After": "10"})
    try:
        sid, row = await auth.session_of(request, st, st.hub.acquire)
    except ApiError:
        raise
    except Exception as exc:  # the pool or the database (a reconnect storm): as /ws answers 1013
        log.warning("sse session lookup failed: %s", exc)
        raise Unavailable("Could not check the session now; try again") from None
    user = store_users.brief(row) if row is not None else None
    conn = SseConn(user, settings.ws_max_pending_bytes)
    conn.session = store_sessions.key(sid) if sid is not None else None
    conn.epoch = row["credential_epoch"] if row is not None else 0
    hub, presence = st.hub, st.presence
    st.connections_per_ip[ip] += 1
    hub.add(conn)
    presence.connect(conn)
    try:
        conn.send(Frame(wire.hello(user, settings.ws_heartbeat_seconds)))
        conn.send(await presence.frame("site", conn))
        if user is not None and conn.session is not None:
            try:
                await hub.users.add(conn)
            except Exception as exc:  # the hub's session sweep still covers this stream
                log.warning("sse %d: user channel set-up failed: %s", conn.id, exc)
        if feed is not None:  # a thread list's soft updates (a client that reconnects reloads its list)
            await hub.feeds.join(conn, await _feed_channel(st, feed))
            conn.send(Frame(wire.feed_subscribed(feed)))
        if thread_id is not None:
            await hub.subscribe(conn, thread_id, since, partial(presence.welcome, thread_id, conn))
    except BaseException:
        _leave(st, conn, ip)
        raise
    metrics.SSE_STREAMS.inc()
    _open.add(conn)
    log.info("sse open %d thread=%s user=%s", conn.id, thread_id, user["username"] if user else "-")
    return StreamingResponse(_body(st, conn, thread_id, ip), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _body(st: AppState, conn: SseConn, thread_id: int | None, ip: str) -> AsyncIterator[bytes]:
    # The heartbeat is one timer per stream that wakes the body, not a timeout around every wait: a wait_for
    # per delivered event (a task and a timer handle each time) was a tenth of an SSE fan-out's CPU.
    heartbeat = st.settings.ws_heartbeat_seconds
    loop = asyncio.get_running_loop()
    timer: asyncio.TimerHandle | None = None

    def beat() -> None:
        nonlocal timer
        conn.beat = True
        conn.wakeup.set()
        timer = loop.call_later(heartbeat, beat)

    timer = loop.call_later(heartbeat, beat)
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        while True:
            if conn.queue:
                conn.beat = False  # this write keeps the response alive as well as a comment would
                yield conn.take()
            if conn.close_code is not None or not conn.alive:
                break
            conn.wakeup.clear()
            if conn.queue:
                continue
            if conn.beat:
                conn.beat = False
                yield b": keep-alive\n\n"
                continue
            await conn.wakeup.wait()
        if conn.close_code == WS_4001_SESSION_ENDED:
            yield b'event: close\ndata: {"code":%d}\n\n' % WS_4001_SESSION_ENDED
    finally:
        if timer is not None:
            timer.cancel()
        _open.discard(conn)
        _leave(st, conn, ip)
        metrics.SSE_STREAMS.dec()
        log.info("sse close %d thread=%s code=%s", conn.id, thread_id, conn.close_code)


def _leave(st: AppState, conn: SseConn, ip: str) -> None:
    """What a socket's end does (ws._serve): out of every room, the user channel and presence; its address
    holds one connection less."""
    if conn not in st.hub.conns:
        return
    st.connections_per_ip[ip] -= 1
    if st.connections_per_ip[ip] <= 0:
        del st.connections_per_ip[ip]
    linger = conn.close_code != WS_4001_SESSION_ENDED
    for tid in list(conn.rooms):
        st.presence.remove(tid, conn.user, linger=linger)
    st.hub.remove(conn)
    st.presence.disconnect(conn, linger=linger)
    conn.alive = False
