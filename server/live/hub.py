"""The hub: this process's live core, put together, and the broker's messages routed into it.

    rooms.py      thread → local sockets: seq order, delivery, chunked fan-out, what a room holds
    backfill.py   what rooms missed, read from thread_events: gaps, reconnects, the reconcile round
    replay.py     subscribe(conn, thread_id, since, greet): replay, `subscribed`, the seam to live
    users.py      user → local sockets: the user channel, notification batches, the session sweep
    feeds.py      the live thread lists
    typingrelay.py  typing frames to a room's other sockets

Every broker message arrives here (on_message) and goes to one of them by its channel (channels.py);
channels another part owns (presence's doorbell, the users batches) are routed to their listener.
After a broker reconnect every room is checked against the database, and every RECONCILE_EVERY
seconds a round does so too (a publish lost without a reconnect is a delay, never a loss), closes
the sockets of ended sessions, drops rooms nobody watched for LINGER seconds, lets go of recent history
past its age bound and gives stuck closing sockets a deadline. See docs/live.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Protocol

import asyncpg

from .. import metrics
from ..wire import frame_seq
from . import typingrelay
from .backfill import Backfill
from .broker import Broker
from .channels import Channels, is_typing
from .conn import Conn, Frame
from .feeds import Feeds
from .replay import Greet, Subscriptions
from .rooms import HISTORY_SECONDS, RECENT, Room, Rooms
from .users import Users, UsersChannel

log = logging.getLogger(__name__)

RECONCILE_EVERY = 5.0  # seconds between checks of every room's seq against the database
LINGER = 30.0          # seconds a room stays subscribed after its last socket leaves (reconnects are cheap)
# How long the live path waits for a pooled connection. asyncpg waits forever by default: a reconnect
# storm or a stuck database would then queue joins without end. Past this a join answers `unavailable`
# (the client retries with back-off) and a backfill backs off, exactly as when the database is down.
ACQUIRE_TIMEOUT = 5.0


class Listener(Protocol):
    """What owns a channel of its own (presence): its messages, and a reconnect (they may have been lost)."""

    def on_message(self, message: bytes) -> None: ...

    def on_reconnect(self) -> None: ...


class Hub:
    """Sockets, rooms, users and feeds of this process (see the module's docstring for the parts)."""

    def __init__(self, pool: asyncpg.Pool, broker: Broker, channels: Channels | None = None, *,
                 session_idle_days: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] | None = None, history_events: int = RECENT,
                 history_seconds: float = HISTORY_SECONDS) -> None:
        self.pool = pool
        self.broker = broker
        self.channels = channels if channels is not None else Channels()
        self.clock = clock  # injectable with `sleep` (the backfill's back-off wait), so unit tests never sleep
        self.tasks: set[asyncio.Task[Any]] = set()
        self.conns: set[Conn] = set()
        self.rooms = Rooms(self._spawn, self._gap, clock, history_events, history_seconds)
        self.backfill = Backfill(self.rooms, self.acquire, self._spawn, clock, sleep)
        self.subscriptions = Subscriptions(self.rooms, self.backfill, broker, self.channels, self.acquire,
                                           self._spawn)
        self.users = Users(broker, self.channels, self.acquire, self._spawn, session_idle_days)
        self.feeds = Feeds(broker)  # live thread lists: feed:all, feed:category:{id}
        # Channels other parts own, routed by channel: the hub knows no presence.
        self.listeners: dict[str, Listener] = {self.channels.users: UsersChannel(self.users.batches, self.conns)}
        self.origin = uuid.uuid4().hex[:12]  # this process, in typing messages
        self._reconcile: asyncio.Task[None] | None = None
        # The delivery path, bound once (on_message runs for every event this process receives).
        self._room_of = self.rooms.by_thread.get
        self._accept = self.rooms.accept

    def listen(self, channel: str, listener: Listener) -> None:
        """Route `channel` to `listener` (before start(), which subscribes it)."""
        self.listeners[channel] = listener

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        await self.broker.start(self)
        for channel in self.listeners:
            await self.broker.subscribe(channel)
        self._reconcile = asyncio.create_task(self._reconcile_loop(), name="hub-reconcile")

    async def stop(self) -> None:
        if self._reconcile is not None:
            self._reconcile.cancel()
        for task in list(self.tasks):
            task.cancel()
        await self.broker.close()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task %s failed", task.get_name(), exc_info=task.exception())

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for the live path (the hub's reads and ws.py's), waited for at most
        ACQUIRE_TIMEOUT (TimeoutError)."""
        async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            yield conn

    # -- broker callbacks ------------------------------------------------

    def on_message(self, channel: str, message: bytes) -> None:
        if (listener := self.listeners.get(channel)) is not None:
            listener.on_message(message)
            return
        thread_id = self.channels.thread_of(channel)
        if thread_id is None:
            if self.channels.is_feed(channel):
                self.feeds.on_message(channel, message)
                return
            user_id = self.channels.user_of(channel)
            if user_id is not None:
                self.users.on_message(user_id, message)
            return
        room = self._room_of(thread_id)
        if room is None:
            return
        if is_typing(message):
            typingrelay.relay(self.origin, message, room.members)
            return
        self._accept(room, frame_seq(message), Frame(message))

    def on_reconnect(self) -> None:
        metrics.BROKER_RECONNECTS.inc()
        for room in self.rooms.by_thread.values():
            self.backfill.start(room)
        # A session may have ended while we were away (its end_sessions message is lost): check them all.
        self._spawn(self.users.sweep_quietly(self.conns), "session-sweep")
        for listener in self.listeners.values():
            listener.on_reconnect()

    def _gap(self, room: Room) -> None:
        self.backfill.start(room)

    # -- sockets ---------------------------------------------------------

    def add(self, conn: Conn) -> None:
        self.conns.add(conn)
        metrics.SOCKETS.inc()

    def remove(self, conn: Conn) -> None:
        if conn in self.conns:
            self.conns.discard(conn)
            metrics.SOCKETS.dec()
        for tid in list(conn.rooms):
            self.rooms.leave(conn, tid)
        if conn.feeds:
            self.feeds.leave_all(conn)
        self.users.remove(conn)

    async def subscribe(self, conn: Conn, thread_id: int, since: int | None, greet: Greet | None = None) -> None:
        """The socket joins the thread: replay after `since`, `subscribed`, greet()'s frame, then live events
        (replay.py). Raises ApiError (not_found, unavailable) with the socket in no room."""
        await self.subscriptions.subscribe(conn, thread_id, since, greet)

    def leave(self, conn: Conn, thread_id: int) -> None:
        self.rooms.leave(conn, thread_id)

    def watching(self, thread_id: int) -> list[Conn]:
        return self.rooms.watching(thread_id)

    def has_watchers(self, thread_id: int) -> bool:
        return self.rooms.has_watchers(thread_id)

    def note_commit(self, thread_id: int, seq: int) -> None:
        """A write committed this event (effects.py): its fan-out latency is measured from now."""
        self.rooms.note_commit(thread_id, seq)

    # -- the reconcile round ---------------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(RECONCILE_EVERY)
            try:
                self._reap_closing()
                await self.users.sweep(self.conns)
                now = self.clock()
                for tid, room in list(self.rooms.by_thread.items()):
                    if not room.members and not room.pending and room.empty_since is not None \
                            and now - room.empty_since > LINGER:
                        await self._drop_room(tid, room)
                self.rooms.expire_all()
                await self.backfill.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reconcile failed: %s", exc)

    def _reap_closing(self) -> None:
        """uvicorn's ping timeout closes the transport without a deadline; with output still queued for a
        peer that vanished, asyncio would wait for the flush forever. Give every such socket one."""
        for conn in list(self.conns):
            reap = getattr(conn, "reap_if_stuck", None)
            if reap is not None:
                reap()

    async def _drop_room(self, thread_id: int, room: Room) -> None:
        if self.rooms.drop(thread_id, room):
            self.backfill.forget(room)
            try:
                await self.broker.unsubscribe(self.channels.thread(thread_id))
            except Exception as exc:
                log.warning("unsubscribe %d failed: %s", thread_id, exc)
