"""The hub: thread → local sockets, delivering each event in seq order, once.

Per thread (a Room) the hub keeps `seq`, the last event handed to its
sockets. An event frame from the broker is delivered only if it is exactly
seq + 1; a later one means a gap (a lost or reordered publish), and the room
reads the missing events from thread_events before delivering more; an older
one is a duplicate and dropped. After a broker reconnect every room is
checked against the database the same way, and a slow reconcile loop does so
periodically, so a lost publish is a delay, never a loss. See docs/live.md.

Delivery is one Frame (bytes built once) written to each socket in turn.
Large rooms are written in chunks with a yield in between, so a hot thread
with thousands of watchers does not starve other threads or HTTP requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

import asyncpg

from .. import metrics
from ..errors import WS_4001_SESSION_ENDED, NotFound
from ..store import events as store_events
from ..store import sessions as store_sessions
from ..wire import frame_seq
from .broker import Broker
from .conn import Conn, Frame
from .feeds import Feeds
from .userchannel import parse_control

log = logging.getLogger(__name__)

CHUNK = 512            # sockets written per loop turn in a large room
MAX_BATCH = 64         # queued events a large room writes to each socket in one go when it is behind
RECENT = 64            # recent frames kept per room: reconnects with a recent `since` need no query
RECENT_BYTES = 512 * 1024  # ...and at most this many bytes of them (always the newest one, whatever its size)
RECENT_TOTAL = 64 << 20    # ...and all rooms of this process together at most this many (rooms then keep one)
REPLAY_CHUNK = 256 * 1024  # a replay is read and sent in chunks of about this many bytes, never built whole
RECONCILE_EVERY = 5.0  # seconds between checks of every room's seq against the database
MAX_REPLAY = 10_000    # a resume further back than this gets reset: reloading over HTTP is cheaper
LINGER = 30.0          # seconds a room stays subscribed after its last socket leaves (reconnects are cheap)


class Room:
    __slots__ = ("thread_id", "members", "seq", "ready", "held", "recent", "recent_bytes", "outbox", "task",
                 "backfill", "empty_since", "pending")

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.members: dict[Conn, int] = {}       # conn → last seq it was sent
        self.pending: dict[Conn, list[tuple[int, Frame]]] = {}  # joining conns: live frames held until replay ends
        self.seq = 0
        self.ready: asyncio.Future[None] | None = None
        self.held: dict[int, Frame] = {}          # frames that arrived ahead of a gap
        self.recent: deque[tuple[int, Frame]] = deque()  # bounded by RECENT and RECENT_BYTES in remember()
        self.recent_bytes = 0
        self.outbox: deque[tuple[int, Frame]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.backfill: asyncio.Task[None] | None = None
        self.empty_since: float | None = None

    def remember(self, seq: int, frame: Frame, tight: bool = False) -> int:
        """Keep a frame in `recent` (only it when `tight`); a deletion drops what came before (it may hold
        the deleted text). Returns the change in bytes kept."""
        recent = self.recent
        before = self.recent_bytes
        if tight or b'"name":"post.deleted"' in frame.json[:160]:
            recent.clear()
            self.recent_bytes = 0
        recent.append((seq, frame))
        self.recent_bytes += len(frame.json)
        while len(recent) > 1 and (len(recent) > RECENT or self.recent_bytes > RECENT_BYTES):
            self.recent_bytes -= len(recent.popleft()[1].json)
        return self.recent_bytes - before


class Listener(Protocol):
    """What owns a channel of its own (presence): its messages, and a reconnect (they may have been lost)."""

    def on_message(self, message: bytes) -> None: ...

    def on_reconnect(self) -> None: ...


class Hub:
    def __init__(self, pool: asyncpg.Pool, broker: Broker) -> None:
        self.pool = pool
        self.broker = broker
        # Channels other parts own (presence's doorbell), routed by channel: the hub knows no presence.
        self.listeners: dict[str, Listener] = {}
        self.rooms: dict[int, Room] = {}
        self.conns: set[Conn] = set()
        self.by_user: dict[int, set[Conn]] = {}  # signed-in sockets per user: who hears user:{id}
        self.feeds = Feeds(broker)  # live thread lists: feed:all, feed:category:{id}
        self.recent_total = 0  # bytes in every room's `recent`, kept under RECENT_TOTAL
        self.session_idle_days = 30.0  # set by the app; sockets of sessions idle longer are closed
        self.tasks: set[asyncio.Task[Any]] = set()
        self._reconcile: asyncio.Task[None] | None = None
        self.origin = uuid.uuid4().hex[:12]  # this process, in typing messages
        self.committed: dict[tuple[int, int], float] = {}  # (thread, seq) → commit time, for the latency metric

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

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task %s failed", task.get_name(), exc_info=task.exception())

    # -- broker callbacks ------------------------------------------------

    def on_message(self, channel: str, message: bytes) -> None:
        if (listener := self.listeners.get(channel)) is not None:
            listener.on_message(message)
            return
        thread_id = self.broker.thread_of(channel)
        if thread_id is None:
            if self.broker.is_feed(channel):
                self.feeds.on_message(channel, message)
                return
            user_id = self.broker.user_of(channel)
            if user_id is not None:
                self.on_user_message(user_id, message)
            return
        room = self.rooms.get(thread_id)
        if room is None:
            return
        if message[:1] == b"T":
            self._relay_typing(room, message)
            return
        self.accept(room, frame_seq(message), Frame(message))

    def on_reconnect(self) -> None:
        metrics.BROKER_RECONNECTS.inc()
        for room in self.rooms.values():
            self._start_backfill(room)
        # A session may have ended while we were away (its end_sessions message is lost): check them all.
        self._spawn(self._sweep_sessions(), "session-sweep")
        for listener in self.listeners.values():
            listener.on_reconnect()

    # -- ordering --------------------------------------------------------

    def accept(self, room: Room, seq: int, frame: Frame) -> None:
        """Take an event for the room: deliver it if it is next, hold it past a gap, drop a duplicate."""
        if room.ready is None or not room.ready.done() or room.backfill is not None:
            if seq > room.seq:
                room.held[seq] = frame
            return
        if seq <= room.seq:
            return
        if seq == room.seq + 1:
            self._enqueue(room, seq, frame)
            return
        room.held[seq] = frame
        metrics.GAP_BACKFILLS.inc()
        self._start_backfill(room)

    def note_commit(self, thread_id: int, seq: int) -> None:
        if len(self.committed) > 10_000:
            self.committed.clear()
        self.committed[(thread_id, seq)] = time.perf_counter()

    def _enqueue(self, room: Room, seq: int, frame: Frame) -> None:
        committed = self.committed.pop((room.thread_id, seq), None)
        if committed is not None:
            metrics.FANOUT_LATENCY.observe(time.perf_counter() - committed)
        room.seq = seq
        self.recent_total += room.remember(seq, frame, tight=self.recent_total > RECENT_TOTAL)
        for pend in room.pending.values():
            pend.append((seq, frame))
        members = room.members
        if not room.outbox and len(members) <= CHUNK:
            self._write(room, seq, frame, list(members))
            return
        room.outbox.append((seq, frame))
        if room.task is None:
            room.task = self._spawn(self._drain(room), f"deliver-{room.thread_id}")

    def _write_batch(self, room: Room, batch: list[tuple[int, Frame]], joined: Frame, conns: list[Conn]) -> None:
        members = room.members
        first, last = batch[0][0], batch[-1][0]
        sent = 0
        for conn in conns:
            seen = members.get(conn)
            if seen is None or seen >= last:
                continue
            members[conn] = last
            if seen < first:
                conn.send(joined)
                sent += len(batch)
            else:  # joined mid-batch: only what it has not had
                for seq, frame in batch:
                    if seq > seen:
                        conn.send(frame)
                        sent += 1
        metrics.EVENTS_DELIVERED.inc(sent)

    def _write(self, room: Room, seq: int, frame: Frame, conns: list[Conn]) -> None:
        members = room.members
        sent = 0
        for conn in conns:
            last = members.get(conn)
            if last is not None and last < seq:
                members[conn] = seq
                conn.send(frame)
                sent += 1
        metrics.EVENTS_DELIVERED.inc(sent)

    async def _drain(self, room: Room) -> None:
        """Deliver a large room's queued events, CHUNK sockets per loop turn.

        When several events are waiting (the room fell behind), each socket gets them in ONE write:
        their frames joined, built once. Catching up then costs one send() per socket, not one per event.
        """
        try:
            while room.outbox:
                batch = [room.outbox.popleft() for _ in range(min(len(room.outbox), MAX_BATCH))]
                joined = batch[0][1] if len(batch) == 1 else Frame.joined([f for _, f in batch])
                conns = list(room.members)
                for i in range(0, len(conns), CHUNK):
                    self._write_batch(room, batch, joined, conns[i:i + CHUNK])
                    if i + CHUNK < len(conns):
                        await asyncio.sleep(0)
        finally:
            room.task = None

    def _start_backfill(self, room: Room) -> None:
        if room.backfill is None and room.ready is not None and room.ready.done():
            room.backfill = self._spawn(self._backfill(room), f"backfill-{room.thread_id}")

    async def _backfill(self, room: Room) -> None:
        """Read every stored event after room.seq, deliver in order, then whatever was held."""
        delay = 0.1
        while True:
            try:
                frames = await store_events.frames_since(self.pool, room.thread_id, room.seq)
                break
            except Exception as exc:  # the database is down: keep the held frames and retry
                log.warning("backfill of thread %d failed (%s); retrying", room.thread_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        room.backfill = None
        for seq, data in frames:
            if seq == room.seq + 1:
                room.held.pop(seq, None)
                self._enqueue(room, seq, Frame(data))
        while room.seq + 1 in room.held:
            self._enqueue(room, room.seq + 1, room.held.pop(room.seq + 1))
        for seq in [s for s in room.held if s <= room.seq]:
            del room.held[seq]
        if room.held:  # still a gap: the missing event is committed but not yet visible; try again
            await asyncio.sleep(0.05)
            self._start_backfill(room)
        elif frames:  # one read is budgeted (store.events.READ_BUDGET): read on until nothing is left
            self._start_backfill(room)

    async def _reconcile_loop(self) -> None:
        """Safety net for a publish lost without a reconnect: compare each room's seq with the database."""
        while True:
            await asyncio.sleep(RECONCILE_EVERY)
            try:
                self._reap_closing()
                await self._sweep_sessions()
                now = time.monotonic()
                for tid, room in list(self.rooms.items()):
                    if not room.members and not room.pending and room.empty_since is not None \
                            and now - room.empty_since > LINGER:
                        await self._drop_room(tid, room)
                ids = [tid for tid, r in self.rooms.items() if r.ready is not None and r.ready.done()]
                if not ids:
                    continue
                rows = await self.pool.fetch("SELECT id, seq FROM threads WHERE id = any($1::bigint[])", ids)
                for row in rows:
                    room = self.rooms.get(row["id"])
                    if room is not None and row["seq"] > room.seq:
                        self._start_backfill(room)
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

    async def _unsubscribe_quietly(self, thread_id: int) -> None:
        try:
            if thread_id not in self.rooms:
                await self.broker.unsubscribe(self.broker.thread_channel(thread_id))
        except Exception:
            pass

    async def _drop_room(self, thread_id: int, room: Room) -> None:
        if self.rooms.get(thread_id) is room:
            del self.rooms[thread_id]
            self.recent_total -= room.recent_bytes
            if room.backfill is not None:
                room.backfill.cancel()
            try:
                await self.broker.unsubscribe(self.broker.thread_channel(thread_id))
            except Exception as exc:
                log.warning("unsubscribe %d failed: %s", thread_id, exc)

    # -- sockets ---------------------------------------------------------

    def add(self, conn: Conn) -> None:
        self.conns.add(conn)
        metrics.SOCKETS.inc()

    def remove(self, conn: Conn) -> None:
        if conn in self.conns:
            self.conns.discard(conn)
            metrics.SOCKETS.dec()
        for tid in list(conn.rooms):
            self.leave(conn, tid)
        if conn.feeds:
            self.feeds.leave_all(conn)
        if conn.user is not None:
            mine = self.by_user.get(conn.user["id"])
            if mine is not None:
                mine.discard(conn)
                if not mine:
                    del self.by_user[conn.user["id"]]
                    self._spawn(self._unsubscribe_user(conn.user["id"]), "user-unsubscribe")

    # -- the user channel (userchannel.py) ---------------------------------

    async def add_user(self, conn: Conn) -> None:
        """Put a signed-in socket on its user's channel (subscribed before this returns)."""
        assert conn.user is not None
        user_id = conn.user["id"]
        first = user_id not in self.by_user
        self.by_user.setdefault(user_id, set()).add(conn)
        if first:
            await self.broker.subscribe(self.broker.user_channel(user_id))

    async def _unsubscribe_user(self, user_id: int) -> None:
        if user_id not in self.by_user:
            try:
                await self.broker.unsubscribe(self.broker.user_channel(user_id))
            except Exception as exc:
                log.warning("unsubscribe user %d failed: %s", user_id, exc)

    def on_user_message(self, user_id: int, message: bytes) -> None:
        """A frame for every socket of the user, or a control action on them."""
        conns = list(self.by_user.get(user_id, ()))
        if not conns:
            return
        try:
            action = parse_control(message)
        except Exception:
            log.warning("bad control message for user %d", user_id)
            return
        if action is None:
            frame = Frame(message)
            for conn in conns:
                conn.send(frame)
        elif action.get("action") == "end_sessions":
            only, keep, rebind = action.get("only"), action.get("keep"), action.get("rebind")
            for conn in conns:
                if keep is not None and conn.session == keep:
                    if rebind is not None:
                        conn.session = rebind
                elif only is None or conn.session == only:
                    self.end_session(conn)

    def end_session(self, conn: Conn) -> None:
        log.info("ws %d: its session ended; closing with 4001", conn.id)
        conn.close(WS_4001_SESSION_ENDED, "session ended")

    async def _sweep_sessions(self) -> None:
        """Close the sockets whose session is gone (revoked, expired idle): the net under the channel."""
        seen = [(c, c.session) for c in self.conns if c.session is not None and c.alive]
        if not seen:
            return
        keys = sorted({key for _, key in seen if key is not None})
        live: set[str] = set()
        for i in range(0, len(keys), 5000):
            live |= await store_sessions.live_keys(self.pool, keys[i:i + 5000], self.session_idle_days)
        for conn, key in seen:
            # Only if it still has the session we checked (a password change may have rebound it meanwhile).
            if key not in live and conn.session == key and conn.alive:
                self.end_session(conn)

    async def _room(self, thread_id: int) -> Room:
        """The room for a thread, subscribed to its channel BEFORE its seq is read (no event can slip between)."""
        room = self.rooms.get(thread_id)
        if room is None:
            room = self.rooms[thread_id] = Room(thread_id)
            room.ready = asyncio.get_running_loop().create_future()
            try:
                await self.broker.subscribe(self.broker.thread_channel(thread_id))
                row = await self.pool.fetchrow("SELECT seq, deleted FROM threads WHERE id = $1", thread_id)
                if row is None or row["deleted"]:
                    raise NotFound(f"No thread {thread_id}")
                room.seq = row["seq"]
                room.ready.set_result(None)
            except BaseException as exc:
                del self.rooms[thread_id]
                if not self.rooms.get(thread_id):
                    asyncio.get_running_loop().create_task(self._unsubscribe_quietly(thread_id))
                room.ready.set_exception(exc)
                room.ready.exception()  # retrieved: joiners re-raise it themselves
                raise
            # Frames that arrived while we read seq: keep those after it, in order.
            held, room.held = room.held, {}
            for seq in sorted(held):
                self.accept(room, seq, held[seq])
        else:
            assert room.ready is not None
            await asyncio.shield(room.ready)
            # A room outlives its thread (watchers, linger): a deleted thread stops at once for every new
            # subscriber on every process, whatever this room has cached (CONTRACT "Guarantees").
            if await self.pool.fetchval("SELECT deleted FROM threads WHERE id = $1", thread_id):
                raise NotFound(f"No thread {thread_id}")
        return room

    async def join(self, conn: Conn, thread_id: int, since: int | None) -> tuple[list[Frame], int, bool, bool]:
        """Add conn to a thread. Returns (frames to replay, seq for `subscribed`, reset, stream).

        `stream` means the replay is not in memory: the caller sends it with replay_chunks(). Then it
        sends `subscribed` and calls go_live(), which sends what arrived meanwhile: no gap and no
        duplicate at the seam.
        """
        room = await self._room(thread_id)
        room.pending[conn] = []
        conn.rooms.add(thread_id)
        room.empty_since = None
        target = room.seq
        replay: list[Frame] = []
        reset = stream = False
        if since is not None and target - since > MAX_REPLAY:
            reset = True
        elif since is not None and since < target:
            if room.recent and room.recent[0][0] <= since + 1:
                replay = [f for s, f in room.recent if since < s <= target]
            else:
                stream = True
        elif since is not None and since > target:
            reset = True  # a seq we never issued: the client's state is not ours
        return replay, target, reset, stream

    def abandon(self, conn: Conn, thread_id: int) -> None:
        """Undo a join() whose replay failed."""
        room = self.rooms.get(thread_id)
        if room is not None:
            room.pending.pop(conn, None)
        conn.rooms.discard(thread_id)

    async def replay_chunks(self, thread_id: int, since: int, target: int,
                            chunk: int = REPLAY_CHUNK) -> AsyncIterator[list[Frame] | None]:
        """The stored events since+1..target in chunks of about `chunk` bytes (plus at most one event),
        read one chunk at a time: a replay is never built whole in memory. Yields None once if they are
        pruned (the client must reset)."""
        after = since
        while after < target:
            metrics.REPLAY_QUERIES.inc()
            rows = await store_events.frames_since(self.pool, thread_id, after, min(target - after, 1000), chunk)
            if not rows or rows[0][0] != after + 1:
                yield None  # pruned: the client must reload over HTTP
                return
            frames = [Frame(f) for s, f in rows if s <= target]
            after = rows[-1][0]
            yield frames

    def go_live(self, conn: Conn, thread_id: int, target: int) -> None:
        room = self.rooms.get(thread_id)
        if room is None or conn not in room.pending:
            return
        held = room.pending.pop(conn)
        last = target
        for seq, frame in held:
            if seq > last:
                conn.send(frame)
                last = seq
        room.members[conn] = last
        metrics.SUBSCRIPTIONS.inc()

    def leave(self, conn: Conn, thread_id: int) -> None:
        conn.rooms.discard(thread_id)
        room = self.rooms.get(thread_id)
        if room is None:
            return
        room.pending.pop(conn, None)
        if room.members.pop(conn, None) is not None:
            metrics.SUBSCRIPTIONS.dec()
        if not room.members and not room.pending:
            room.empty_since = time.monotonic()

    def watching(self, thread_id: int) -> list[Conn]:
        room = self.rooms.get(thread_id)
        return list(room.members) if room else []

    # -- typing ----------------------------------------------------------

    @staticmethod
    def typing_message(origin: str, frame: bytes) -> bytes:
        """Typing goes over the thread's channel as b"T<origin> <frame>" so the sender is never echoed."""
        return b"T" + origin.encode() + b" " + frame

    def _relay_typing(self, room: Room, message: bytes) -> None:
        space = message.index(b" ")
        origin = message[1:space].decode()
        frame = Frame(message[space + 1:])
        mine = origin.startswith(self.origin + ":")
        sender = int(origin.rsplit(":", 1)[1]) if mine else -1
        for conn in list(room.members):
            if conn.id != sender:
                conn.send(frame)
