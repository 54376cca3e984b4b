"""The /ws protocol (CONTRACT "Live events"; docs/live.md).

Every client frame is parsed into a typed message with limits before any
logic runs. A bad frame gets an error frame and the connection stays open; a
flood closes it with 1008; uvicorn closes frames over 16 KiB with 1009.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from typing import Annotated, Any

import msgspec
from starlette.websockets import WebSocket

from .. import auth, limits, metrics, wire
from ..errors import WS_1008_POLICY_VIOLATION, WS_1013_TRY_AGAIN_LATER, WS_4001_SESSION_ENDED, ApiError
from ..fields import whole
from ..ratelimit import Bucket
from ..state import AppState
from ..store import categories as store_categories
from ..store import sessions as store_sessions
from ..store import users as store_users
from . import feeds
from .channels import typing_message
from .conn import AsgiConn, Conn, Frame, RawConn, count_frames, raw_protocol, shed
from .hub import Hub

log = logging.getLogger(__name__)

MAX_SUBSCRIPTIONS = 100
ThreadId = Annotated[int, msgspec.Meta(ge=1, le=limits.BIGINT)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=limits.BIGINT)]
PostId = Annotated[int, msgspec.Meta(ge=1, le=limits.BIGINT)]


# A feed: "all" or "category:SLUG" (CONTRACT "Live events"; live/feeds.py), matched as a whole ("all\n" is not one).
FEED = re.compile(f"all|category:{limits.SLUG_PATTERN}")
FeedName = Annotated[str, msgspec.Meta(pattern=whole(FEED))]


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="type"):
    thread: ThreadId | None = None
    since: Seq | None = None
    feed: FeedName | None = None


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="type"):
    thread: ThreadId | None = None
    feed: FeedName | None = None


class Typing(msgspec.Struct, tag="typing", tag_field="type"):
    thread: ThreadId
    # The response whose comment box is being typed in; absent for a response to the question. Only
    # its shape is checked (a positive id, not null): typing is a hint, so nobody looks up whether the
    # post is in this thread, and the page ignores an id it does not show.
    parent: PostId | msgspec.UnsetType = msgspec.UNSET


class Ping(msgspec.Struct, tag="ping", tag_field="type"):
    id: Any = None


ClientFrame = Subscribe | Unsubscribe | Typing | Ping
_decoder = msgspec.json.Decoder(ClientFrame)


def parse(text: str | bytes) -> ClientFrame | bytes:
    """A typed client frame, or the error frame to answer with."""
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError as exc:
        message = str(exc)
        if isinstance(exc, msgspec.ValidationError):
            if "`$.type`" in message or "missing required field `type`" in message:
                return wire.error("unknown_type", "type must be subscribe, unsubscribe, typing or ping")
            return wire.error("invalid", message)
        return wire.error("bad_json", "The frame is not valid JSON")
    except RecursionError:  # e.g. a ping id of arrays nested thousands deep, still under 16 KiB
        return wire.error("bad_json", "The frame is nested too deeply")


class Session:
    """One socket's protocol state (kept small: there is one per open socket)."""

    __slots__ = ("state", "hub", "conn", "frames")

    def __init__(self, state: AppState, conn: Conn) -> None:
        self.state = state
        self.hub: Hub = state.hub
        self.conn = conn
        limits = state.settings.limits
        enabled = state.settings.rate_limits_enabled
        self.frames = Bucket(limits.ws_frames) if enabled else None

    def send(self, data: bytes) -> None:
        self.conn.send(Frame(data))

    def count(self) -> bool:
        """Count one client frame of any kind (text, binary, bad JSON, unknown type) against the flood
        bucket, before anything else is done with it; False (error frame sent, closing 1008) past it."""
        if self.frames is not None and self.frames.take() > 0:
            self.send(wire.error("rate_limited", "Too many frames; slow down"))
            self.conn.close(WS_1008_POLICY_VIOLATION, "too many frames")
            return False
        return True

    async def handle(self, text: str | bytes) -> bool:
        """Answer one client frame (already counted); False when the connection must close."""
        msg = parse(text)
        if isinstance(msg, bytes):
            self.send(msg)
        elif isinstance(msg, Ping):
            self.send(wire.pong(msg.id))
        elif isinstance(msg, (Subscribe, Unsubscribe)) and (msg.thread is None) == (msg.feed is None):
            self.send(wire.error("invalid", "name either a thread or a feed"))
        elif isinstance(msg, Subscribe) and msg.feed is not None:
            await self.subscribe_feed(msg.feed)
        elif isinstance(msg, Unsubscribe) and msg.feed is not None:
            await self.unsubscribe_feed(msg.feed)
        elif isinstance(msg, Subscribe):
            assert msg.thread is not None
            await self.subscribe(msg.thread, msg.since)
        elif isinstance(msg, Unsubscribe):
            assert msg.thread is not None
            if msg.thread in self.conn.rooms:
                self.hub.leave(self.conn, msg.thread)
                self.state.presence.remove(msg.thread, self.conn.user, linger=False)  # a choice, not a drop
            self.send(wire.unsubscribed(msg.thread))
        elif isinstance(msg, Typing):
            await self.typing_frame(msg.thread, None if msg.parent is msgspec.UNSET else msg.parent)
        return True

    async def subscribe(self, thread_id: int, since: int | None) -> None:
        conn = self.conn
        if thread_id in conn.rooms:  # subscribing again restarts the stream from `since`
            self.hub.leave(conn, thread_id)
            self.state.presence.remove(thread_id, conn.user)
        elif len(conn.rooms) >= MAX_SUBSCRIPTIONS:
            self.send(wire.error("too_many_subscriptions", f"At most {MAX_SUBSCRIPTIONS} threads per connection",
                                 thread=thread_id))
            return
        try:  # replay, `subscribed`, the thread's presence, then live events (live/replay.py)
            await self.hub.subscribe(conn, thread_id, since, partial(self.state.presence.welcome, thread_id, conn))
        except ApiError as exc:
            self.send(wire.error(exc.code, exc.message, thread=thread_id))

    async def feed_channel(self, feed: str) -> str | None:
        """The broker channel of a feed name; None for a category that does not exist."""
        if feed == "all":
            return self.state.channels.feed(None)
        async with self.hub.acquire() as db:  # bounded wait: a busy pool answers `unavailable`, not a queue
            cat_id = await store_categories.id_of(db, feed[len("category:"):])
        return None if cat_id is None else self.state.channels.feed(cat_id)

    async def unsubscribe_feed(self, feed: str) -> None:
        try:
            channel = await self.feed_channel(feed)
        except Exception as exc:  # the pool or the database: the socket stays subscribed, the client may retry
            log.warning("feed %s lookup failed: %s", feed, exc)
            self.send(wire.error("unavailable", "Could not unsubscribe now; try again", feed=feed))
            return
        if channel is not None:
            self.hub.feeds.leave(self.conn, channel)
        self.send(wire.feed_unsubscribed(feed))

    async def subscribe_feed(self, feed: str) -> None:
        conn = self.conn
        try:
            channel = await self.feed_channel(feed)
        except Exception as exc:
            log.warning("feed %s lookup failed: %s", feed, exc)
            self.send(wire.error("unavailable", "Could not subscribe now; try again", feed=feed))
            return
        if channel is None:
            self.send(wire.error("not_found", f"No category {feed[len('category:'):]!r}", feed=feed))
            return
        if channel not in (conn.feeds or ()) and len(conn.feeds or ()) >= feeds.MAX_FEEDS:
            self.send(wire.error("too_many_subscriptions", f"At most {feeds.MAX_FEEDS} feeds per connection",
                                 feed=feed))
            return
        try:
            await self.hub.feeds.join(conn, channel)
        except Exception as exc:
            log.warning("feed %s subscribe failed: %s", feed, exc)
            self.send(wire.error("unavailable", "Could not subscribe now; try again", feed=feed))
            return
        self.send(wire.feed_subscribed(feed))

    async def typing_frame(self, thread_id: int, parent: int | None) -> None:
        conn = self.conn
        if conn.user is None:
            self.send(wire.error("forbidden", "Sign in to type", thread=thread_id))
            return
        if thread_id not in conn.rooms:
            self.send(wire.error("not_subscribed", "Subscribe to the thread first", thread=thread_id))
            return
        # Per user and thread, shared by all their sockets on every process (the limiter's Redis bucket):
        # 40 tabs type no faster than one. Typing is a hint: extra ones are dropped quietly.
        if await self.state.limiter.hit(f"typing:{conn.user['id']}:{thread_id}", self.state.settings.limits.ws_typing):
            return
        message = typing_message(self.hub.origin, conn.id, wire.typing(thread_id, conn.user, parent))
        try:
            await self.state.broker.publish(self.state.channels.thread(thread_id), message)
        except Exception as exc:
            log.warning("typing publish failed: %s", exc)


async def endpoint(scope: Any, receive: Any, send: Any, state: AppState) -> None:
    """The handshake (Origin, per-address cap, session), then the socket's life in _serve()."""
    ws = WebSocket(scope, receive, send)
    settings = state.settings
    if not auth.origin_allowed(ws, settings) or state.shutting_down:
        await ws.close(WS_1008_POLICY_VIOLATION)  # before accept: uvicorn answers 403
        return
    ip = auth.client_key(ws, settings)  # an IPv6 client's /64, like every per-address limit
    if state.connections_per_ip[ip] >= settings.max_connections_per_ip:
        await ws.close(WS_1008_POLICY_VIOLATION)
        return
    state.connections_per_ip[ip] += 1
    try:
        try:
            # On the live path's bounded acquire: in a reconnect storm a handshake waits ACQUIRE_TIMEOUT
            # at most for a pooled connection, then answers 1013.
            sid, row = await auth.session_of(ws, state, state.hub.acquire)
        except Exception as exc:
            log.warning("ws session lookup failed: %s", exc)
            await ws.accept()
            await ws.close(WS_1013_TRY_AGAIN_LATER)
            return
        user = store_users.brief(row) if row is not None else None
        session = store_sessions.key(sid) if sid is not None else None
        epoch = row["credential_epoch"] if row is not None else 0
        await ws.accept()
        shed(send, scope)
        del ws, row, sid  # nothing per socket that the live phase does not need
        # The address as the scope holds it, formatted only when a line is logged.
        await _serve(user, session, epoch, scope.get("client"), receive, send, state)
    finally:
        state.connections_per_ip[ip] -= 1
        if state.connections_per_ip[ip] <= 0:
            del state.connections_per_ip[ip]


async def _serve(user: dict[str, Any] | None, session_key: str | None, epoch: int, client: Any, receive: Any,
                 send: Any, state: AppState) -> None:
    settings = state.settings
    proto = raw_protocol(send, settings.ws_compression)
    conn: Conn = (RawConn(proto, user, settings.ws_max_pending_bytes) if proto is not None
                  else AsgiConn(send, user, settings.ws_max_pending_bytes))
    conn.session = session_key
    conn.epoch = epoch
    # Watched: the fast path reaches into uvicorn's protocol object, so an upgrade of uvicorn can lose
    # it silently (tests/live/test_live_fast_path.py reads this gauge; pyproject pins the tested range).
    by_path = metrics.WS_BY_PATH.labels("raw" if proto is not None else "asgi")
    by_path.inc()
    hub, presence = state.hub, state.presence
    session = Session(state, conn)
    count_frames(send, session.count)  # pings, pongs and fragments take from the same bucket
    hub.add(conn)
    presence.connect(conn)
    state.socket_log.open(conn, client)
    try:
        session.send(wire.hello(user, settings.ws_heartbeat_seconds))
        conn.send(await presence.frame("site", conn))
        if user is not None and session_key is not None:
            try:  # on the user's channel, then the session checked once more (live/users.py)
                await hub.users.add(conn)
            except Exception as exc:  # the sweep in the hub's reconcile loop still covers this socket
                log.warning("ws %d: user channel set-up failed: %s", conn.id, exc)
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                break
            if not session.count():  # every frame counts, binary ones too
                break
            text = message.get("text")
            if text is None:
                session.send(wire.error("bad_frame", "Frames must be JSON text, not binary"))
                continue
            if not await session.handle(text):
                break
            if not conn.alive:
                break
    finally:
        # An ended session (sign-out elsewhere, suspension) leaves Active Now at once: the grace
        # period is for reloads and brief drops, not for someone who is no longer signed in.
        linger = conn.close_code != WS_4001_SESSION_ENDED
        for thread_id in list(conn.rooms):
            presence.remove(thread_id, user, linger=linger)
        count_frames(send, None)
        hub.remove(conn)
        presence.disconnect(conn, linger=linger)
        conn.alive = False
        by_path.dec()
        if conn.close_code == WS_1013_TRY_AGAIN_LATER:
            metrics.SLOW_CONSUMERS.inc()
        state.socket_log.close(conn, client)
        if isinstance(conn, AsgiConn) and conn.close_code is None:
            conn.task.cancel()
