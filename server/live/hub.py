"""The hub: thread → local sockets, delivering each event in seq order, once.

Per thread (a Room) the hub keeps `seq`, the last event handed to its
sockets. An event frame from the broker is delivered only if it is exactly
seq + 1; a later one means a gap (a lost or reordered publish), and the room
reads the missing events from thread_events before delivering more; an older
one is a duplicate and dropped. After a broker reconnect every room is
checked against the database the same way, and a slow reconcile loop does so
periodically, so a lost publish is a delay, never a loss. See docs/live.md.

Backfills are batched: one task per process reads the missed events of every
room that is behind in ONE query (store.events.frames_after), so a reconnect
with thousands of rooms costs a few queries, not a task per room queued on the
pool. A gap the database cannot fill yet is retried with exponential back-off;
one it never will (the event was pruned) resets the room's sockets, as a
resume from a pruned `since` does. What the hub holds (frames past a gap, per
room and per process; frames for a socket still replaying) is bounded in bytes.

Delivery is one Frame (bytes built once) written to each socket in turn.
Large rooms are written in chunks with a yield in between, so a hot thread
with thousands of watchers does not starve other threads or HTTP requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import asyncpg

from .. import metrics, wire
from ..errors import WS_4001_SESSION_ENDED, NotFound
from ..store import events as store_events
from ..store import sessions as store_sessions
from ..store import threads as store_threads
from ..wire import frame_seq
from . import typingrelay
from .broker import Broker
from .channels import Channels, is_typing, parse_control
from .conn import Conn, Frame
from .feeds import Feeds
from .userchannel import Batches

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
HELD_BYTES = 1 << 20   # frames held per room while it is behind; past this they are dropped and read back
#                        from thread_events (the source of truth) instead of buffering without end
HELD_TOTAL = 64 << 20  # ...and all rooms of this process together at most this many (10,000 rooms behind a
#                        gap would otherwise hold 10 GiB); a room that would pass it drops its own the same way
PENDING_BYTES = 1 << 20  # live frames held for one joining socket while its replay streams; past this it stops
#                          holding for that socket, which gets `subscribed` with reset (reload over HTTP) instead
BACKFILL_ROOMS = 256   # rooms read per backfill query (a reconnect with more rooms takes several)
BACKFILL_BUDGET = 1 << 20  # event data one backfill query reads, shared by its rooms...
BACKFILL_ROOM_MIN = 16 * 1024  # ...but at least this much (and one event) per room
BACKOFF_FIRST = 0.05   # seconds before retrying a gap the database did not fill (or a failed read)...
BACKOFF_MAX = 2.0      # ...doubling up to this, back to BACKOFF_FIRST once the room caught up
# How long the live path waits for a pooled connection. asyncpg waits forever by default: a reconnect
# storm or a stuck database would then queue joins without end. Past this a join answers `unavailable`
# (the client retries with back-off) and a backfill backs off, exactly as when the database is down.
ACQUIRE_TIMEOUT = 5.0


class Tally:
    """Bytes held by every room of one hub (shared by its rooms, kept under HELD_TOTAL by Room.hold)."""

    __slots__ = ("held",)

    def __init__(self) -> None:
        self.held = 0


class Joining:
    """The live frames a joining socket missed while its replay streams, at most PENDING_BYTES of them.

    Past the bound (a slow replay in a hot room) the frames are let go and `cut` is set: the socket then
    gets `subscribed` with reset when it goes live, never a stream with a hole. The frames themselves
    are shared with the room's other sockets; what is bounded is what this socket keeps alive."""

    __slots__ = ("frames", "bytes", "cut")

    def __init__(self) -> None:
        self.frames: list[tuple[int, Frame]] = []
        self.bytes = 0
        self.cut = False

    def add(self, seq: int, frame: Frame) -> None:
        if self.cut:
            return
        if self.bytes + len(frame.json) > PENDING_BYTES:
            self.stop()
            return
        self.frames.append((seq, frame))
        self.bytes += len(frame.json)

    def stop(self) -> None:
        """Hold nothing more: the socket's stream cannot be continued from its replay."""
        self.frames = []
        self.bytes = 0
        self.cut = True


class Room:
    __slots__ = ("thread_id", "members", "seq", "ready", "held", "held_bytes", "dropped", "recent",
                 "recent_bytes", "outbox", "task", "behind", "retry_at", "delay", "empty_since", "pending",
                 "tally")

    def __init__(self, thread_id: int, tally: Tally | None = None) -> None:
        self.thread_id = thread_id
        self.tally = tally if tally is not None else Tally()  # the hub's, shared by all its rooms
        self.members: dict[Conn, int] = {}       # conn → last seq it was sent
        self.pending: dict[Conn, Joining] = {}    # joining conns: live frames held until their replay ends
        self.seq = 0
        self.ready: asyncio.Future[None] | None = None
        self.held: dict[int, Frame] = {}          # frames that arrived ahead of a gap (HELD_BYTES at most)
        self.held_bytes = 0
        self.dropped = 0                          # the highest seq dropped from `held`: read up to it from the db
        self.recent: deque[tuple[int, Frame]] = deque()  # bounded by RECENT and RECENT_BYTES in remember()
        self.recent_bytes = 0
        self.outbox: deque[tuple[int, Frame]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.behind = False                       # waiting for the backfill (frames are held meanwhile)
        self.retry_at = 0.0                       # when the backfill may read this room next (hub clock)
        self.delay = BACKOFF_FIRST                # the next back-off if that read does not fill the gap
        self.empty_since: float | None = None

    def hold(self, seq: int, frame: Frame) -> None:
        """Keep a frame that came ahead of the room's seq; past HELD_BYTES (or the process past HELD_TOTAL)
        drop all of them instead (the backfill then reads them from thread_events: nothing is lost, memory
        stays bounded)."""
        if seq in self.held:
            return
        size = len(frame.json)
        if self.held_bytes + size > HELD_BYTES or self.tally.held + size > HELD_TOTAL:
            self.dropped = max(self.dropped, seq, *self.held)
            self.drop_held()
            return
        self.held[seq] = frame
        self.held_bytes += size
        self.tally.held += size

    def unhold(self, seq: int) -> Frame | None:
        frame = self.held.pop(seq, None)
        if frame is not None:
            self.held_bytes -= len(frame.json)
            self.tally.held -= len(frame.json)
        return frame

    def drop_held(self) -> dict[int, Frame]:
        """Let go of every held frame (returned, for a caller that hands them on)."""
        held = self.held
        self.tally.held -= self.held_bytes
        self.held = {}
        self.held_bytes = 0
        return held

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


class DeletedCheck:
    """Whether threads are deleted, asked by joins to rooms that exist already, read in batches.

    Every join must see a deletion committed before it began, so a join never shares a read that
    started before it did: joins that arrive while a read is running wait for the next read, which
    asks for all of them at once (one query however many sockets join in a storm)."""

    def __init__(self, acquire: Callable[[], Any]) -> None:
        self.acquire = acquire
        self.waiting: dict[int, list[asyncio.Future[bool]]] = {}
        self.running: asyncio.Task[None] | None = None
        self.queries = 0

    async def check(self, thread_id: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(thread_id, []).append(future)
        if self.running is None:
            self.running = asyncio.get_running_loop().create_task(self._run(), name="hub-deleted-check")
        return await future

    async def _run(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, {}
                try:
                    self.queries += 1
                    async with self.acquire() as conn:
                        deleted = await store_threads.deleted_among(conn, list(batch))
                except Exception as exc:  # each join fails as it would have with its own query
                    for futures in batch.values():
                        for f in futures:
                            if not f.done():
                                f.set_exception(exc)
                    continue
                for tid, futures in batch.items():
                    for f in futures:
                        if not f.done():
                            f.set_result(tid in deleted)
        finally:
            self.running = None


class Listener(Protocol):
    """What owns a channel of its own (presence): its messages, and a reconnect (they may have been lost)."""

    def on_message(self, message: bytes) -> None: ...

    def on_reconnect(self) -> None: ...


class Hub:
    def __init__(self, pool: asyncpg.Pool, broker: Broker, channels: Channels | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.pool = pool
        self.clock = clock  # injectable with `sleep` (the backfill's back-off wait), so unit tests never sleep
        self.sleep = sleep if sleep is not None else self._sleep_or_wake
        self.broker = broker
        self.channels = channels if channels is not None else Channels()
        # Channels other parts own (presence's doorbell), routed by channel: the hub knows no presence.
        self.listeners: dict[str, Listener] = {}
        self.rooms: dict[int, Room] = {}
        self.conns: set[Conn] = set()
        self.by_user: dict[int, set[Conn]] = {}  # signed-in sockets per user: who hears user:{id}
        self.feeds = Feeds(broker)  # live thread lists: feed:all, feed:category:{id}
        self.recent_total = 0  # bytes in every room's `recent`, kept under RECENT_TOTAL
        self.tally = Tally()   # bytes in every room's `held`, kept under HELD_TOTAL
        self.session_idle_days = 30.0  # set by the app; sockets of sessions idle longer are closed
        self.tasks: set[asyncio.Task[Any]] = set()
        self._reconcile: asyncio.Task[None] | None = None
        self.behind: dict[int, Room] = {}  # rooms waiting for the backfill, read together
        self._backfiller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a room fell behind: the backfiller stops waiting
        self.backfill_queries = 0
        self.origin = uuid.uuid4().hex[:12]  # this process, in typing messages
        self.committed: dict[tuple[int, int], float] = {}  # (thread, seq) → commit time, for the latency metric
        self._deleted = DeletedCheck(self.acquire)  # joins to existing rooms: is the thread deleted?

    def listen(self, channel: str, listener: Listener) -> None:
        """Route `channel` to `listener` (before start(), which subscribes it)."""
        self.listeners[channel] = listener

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        # Large notification fan-outs: one batch per process on a channel every process subscribes
        # (userchannel.py).
        self.batches = Batches(self.by_user, self.acquire, self._spawn)
        self.listen(self.channels.users, self.batches)
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
        thread_id = self.channels.thread_of(channel)
        if thread_id is None:
            if self.channels.is_feed(channel):
                self.feeds.on_message(channel, message)
                return
            user_id = self.channels.user_of(channel)
            if user_id is not None:
                self.on_user_message(user_id, message)
            return
        room = self.rooms.get(thread_id)
        if room is None:
            return
        if is_typing(message):
            typingrelay.relay(self.origin, message, room.members)
            return
        self.accept(room, frame_seq(message), Frame(message))

    def on_reconnect(self) -> None:
        metrics.BROKER_RECONNECTS.inc()
        for room in self.rooms.values():
            self._start_backfill(room)
        # A session may have ended while we were away (its end_sessions message is lost): check them all.
        self._spawn(self._sweep_quietly(), "session-sweep")
        for listener in self.listeners.values():
            listener.on_reconnect()

    # -- ordering --------------------------------------------------------

    def accept(self, room: Room, seq: int, frame: Frame) -> None:
        """Take an event for the room: deliver it if it is next, hold it past a gap, drop a duplicate."""
        if room.ready is None or not room.ready.done() or room.behind:
            if seq > room.seq:
                room.hold(seq, frame)
            return
        if seq <= room.seq:
            return
        if seq == room.seq + 1:
            self._enqueue(room, seq, frame)
            return
        room.hold(seq, frame)
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
            pend.add(seq, frame)
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

    # -- backfill ----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for the live path (the hub's reads and ws.py's), waited for at most
        ACQUIRE_TIMEOUT (TimeoutError)."""
        async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
            yield conn

    def _warm(self, room: Room, recent: list[tuple[int, bytes]]) -> None:
        """Fill a new room's replay cache with the stored events just read, if they end at its seq."""
        frames = [(seq, f) for seq, f in recent if seq <= room.seq]
        if not frames or frames[-1][0] != room.seq or any(b[0] != a[0] + 1 for a, b in zip(frames, frames[1:])):
            return
        for seq, f in frames:
            self.recent_total += room.remember(seq, Frame(f), tight=self.recent_total > RECENT_TOTAL)

    def _start_backfill(self, room: Room) -> None:
        """Queue the room for the process's backfiller (a room already queued keeps its back-off)."""
        if room.ready is None or not room.ready.done() or room.behind:
            return
        room.behind = True
        room.retry_at = self.clock()
        self.behind[room.thread_id] = room
        self._wake.set()
        if self._backfiller is None:
            self._backfiller = self._spawn(self._backfill_loop(), "backfill")

    async def _sleep_or_wake(self, delay: float) -> None:
        """Wait `delay` seconds, or less if a room falls behind meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    async def _backfill_loop(self) -> None:
        """Read every queued room that is due, BACKFILL_ROOMS per query, until none is behind."""
        try:
            while self.behind:
                now = self.clock()
                due = [r for r in self.behind.values() if r.retry_at <= now]
                if not due:
                    self._wake.clear()
                    await self.sleep(min(r.retry_at for r in self.behind.values()) - now)
                    continue
                for i in range(0, len(due), BACKFILL_ROOMS):
                    await self._backfill_once(due[i:i + BACKFILL_ROOMS])
        finally:
            self._backfiller = None

    async def _backfill_once(self, rooms: list[Room]) -> None:
        """One query for these rooms' missed events; each gets them in order, then what it held."""
        budget = max(BACKFILL_ROOM_MIN, BACKFILL_BUDGET // len(rooms))
        afters = [(r.thread_id, r.seq) for r in rooms]  # no room moves meanwhile: behind, it only holds
        self.backfill_queries += 1
        metrics.BACKFILL_QUERIES.inc()
        try:
            async with self.acquire() as conn:
                found = await store_events.frames_after(conn, afters, budget=budget)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database is down or the pool exhausted: keep the held frames, back off
            log.warning("backfill of %d rooms failed (%s); retrying", len(rooms), exc)
            for room in rooms:
                self._back_off(room)
            return
        for room in rooms:
            if self.rooms.get(room.thread_id) is room and room.behind:
                head, frames = found.get(room.thread_id, (None, []))
                self._catch_up(room, head, frames)

    def _catch_up(self, room: Room, head: int | None, frames: list[tuple[int, bytes]]) -> None:
        before = room.seq
        # Seqs are taken under the thread's row lock and stored in the same transaction, and the head
        # and the events come from one snapshot: if the stored events after room.seq do not start at
        # room.seq + 1, that event is gone (pruned by retention), not late. Retrying cannot fill it.
        if head is not None and head > room.seq and (not frames or frames[0][0] > room.seq + 1):
            self._skip_pruned(room, head)
        for seq, data in frames:
            if seq == room.seq + 1:
                room.unhold(seq)
                self._enqueue(room, seq, Frame(data))
        while room.seq + 1 in room.held:
            frame = room.unhold(room.seq + 1)
            assert frame is not None
            self._enqueue(room, room.seq + 1, frame)
        for seq in [s for s in room.held if s <= room.seq]:
            room.unhold(seq)
        if head is None:  # the thread row is gone: nothing more will come to fill a gap
            room.drop_held()
            room.dropped = 0
        if room.held or room.seq < max(head or 0, room.dropped):
            if room.seq > before:  # progress (the read was budgeted): read on at once
                room.delay = BACKOFF_FIRST
                room.retry_at = self.clock()
            else:  # the missing event is not readable (not yet visible, or pruned): back off
                self._back_off(room)
            return
        room.behind = False
        room.dropped = 0
        room.delay = BACKOFF_FIRST
        self.behind.pop(room.thread_id, None)

    def _skip_pruned(self, room: Room, head: int) -> None:
        """The room's next event is pruned: its stream cannot be continued. Every socket gets what a
        resume from a pruned `since` gets, `subscribed` with reset (the client reloads over HTTP), and the
        room goes on from the database's head. The reset is sent after the read that saw `head`, so the
        client's reload shows at least everything up to it; what follows is delivered as usual."""
        log.warning("thread %d: event %d is pruned; resetting its %d sockets at seq %d",
                    room.thread_id, room.seq + 1, len(room.members) + len(room.pending), head)
        room.seq = head
        for seq in [s for s in room.held if s <= head]:
            room.unhold(seq)
        if room.dropped <= head:
            room.dropped = 0
        self.recent_total -= room.recent_bytes  # the cache would replay across the hole
        room.recent.clear()
        room.recent_bytes = 0
        reset = Frame(wire.subscribed(room.thread_id, head, reset=True))
        for conn in room.members:
            room.members[conn] = head  # queued older frames are not sent after the reset
            conn.send(reset)
        for pend in room.pending.values():  # replaying sockets would continue across the hole
            pend.stop()

    def _back_off(self, room: Room) -> None:
        room.retry_at = self.clock() + room.delay
        room.delay = min(room.delay * 2, BACKOFF_MAX)

    async def _reconcile_loop(self) -> None:
        """Safety net for a publish lost without a reconnect: compare each room's seq with the database."""
        while True:
            await asyncio.sleep(RECONCILE_EVERY)
            try:
                self._reap_closing()
                await self._sweep_sessions()
                now = self.clock()
                for tid, room in list(self.rooms.items()):
                    if not room.members and not room.pending and room.empty_since is not None \
                            and now - room.empty_since > LINGER:
                        await self._drop_room(tid, room)
                ids = [tid for tid, r in self.rooms.items() if r.ready is not None and r.ready.done()]
                if not ids:
                    continue
                async with self.acquire() as conn:
                    seqs = await store_threads.seqs(conn, ids)
                for tid, seq in seqs.items():
                    behind = self.rooms.get(tid)
                    if behind is not None and seq > behind.seq:
                        self._start_backfill(behind)
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
                await self.broker.unsubscribe(self.channels.thread(thread_id))
        except Exception:
            pass

    async def _drop_room(self, thread_id: int, room: Room) -> None:
        if self.rooms.get(thread_id) is room:
            del self.rooms[thread_id]
            self.recent_total -= room.recent_bytes
            room.drop_held()
            if self.behind.get(thread_id) is room:
                del self.behind[thread_id]
            try:
                await self.broker.unsubscribe(self.channels.thread(thread_id))
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
            await self.broker.subscribe(self.channels.user(user_id))

    async def _unsubscribe_user(self, user_id: int) -> None:
        if user_id not in self.by_user:
            try:
                await self.broker.unsubscribe(self.channels.user(user_id))
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
            only, before = action.get("only"), action.get("before")
            for conn in conns:
                # One session (sign-out), or every session made before the user's epoch `before` (a password
                # change, a suspension; None: all of them). A socket of a session made at the new epoch (the
                # changer's page reconnecting with its new cookie) stays.
                if (conn.session == only) if only is not None else (before is None or conn.epoch < before):
                    self.end_session(conn)

    def end_session(self, conn: Conn) -> None:
        log.info("ws %d: its session ended; closing with 4001", conn.id)
        conn.close(WS_4001_SESSION_ENDED, "session ended")

    async def _sweep_quietly(self) -> None:
        try:
            await self._sweep_sessions()
        except Exception as exc:  # database down or pool busy: the reconcile loop sweeps again in 5 s
            log.warning("session sweep failed: %s", exc)

    async def _sweep_sessions(self) -> None:
        """Close the sockets whose session is gone (revoked, expired idle, made before the user's credential
        epoch, the user suspended: store.sessions.live_keys): the net under the channel."""
        seen = [(c, c.session) for c in self.conns if c.session is not None and c.alive]
        if not seen:
            return
        keys = sorted({key for _, key in seen if key is not None})
        live: set[str] = set()
        for i in range(0, len(keys), 5000):
            async with self.acquire() as conn:
                live |= await store_sessions.live_keys(conn, keys[i:i + 5000], self.session_idle_days)
        for conn, key in seen:
            if key not in live and conn.alive:
                self.end_session(conn)

    async def _room(self, thread_id: int) -> Room:
        """The room for a thread, subscribed to its channel BEFORE its seq is read (no event can slip between)."""
        room = self.rooms.get(thread_id)
        if room is None:
            room = self.rooms[thread_id] = Room(thread_id, self.tally)
            room.ready = asyncio.get_running_loop().create_future()
            try:
                await self.broker.subscribe(self.channels.thread(thread_id))
                async with self.acquire() as conn:
                    seq = await store_threads.live_seq(conn, thread_id)
                    if seq is None:
                        raise NotFound(f"No thread {thread_id}")
                    # The last events, so that the sockets resuming here after a restart (a reconnect
                    # storm) replay from memory: one read per room and process, not one per socket.
                    recent = await store_events.frames_since(conn, thread_id, max(0, seq - RECENT), RECENT,
                                                             RECENT_BYTES)
                room.seq = seq
                self._warm(room, recent)
                room.ready.set_result(None)
            except BaseException as exc:
                del self.rooms[thread_id]
                room.drop_held()
                if not self.rooms.get(thread_id):
                    asyncio.get_running_loop().create_task(self._unsubscribe_quietly(thread_id))
                room.ready.set_exception(exc)
                room.ready.exception()  # retrieved: joiners re-raise it themselves
                raise
            # Frames that arrived while we read seq: keep those after it, in order.
            held = room.drop_held()
            for seq in sorted(held):
                self.accept(room, seq, held[seq])
            if room.dropped > room.seq:  # more arrived than could be held: read them from thread_events
                self._start_backfill(room)
        else:
            assert room.ready is not None
            await asyncio.shield(room.ready)
            # A room outlives its thread (watchers, linger): a deleted thread stops at once for every new
            # subscriber on every process, whatever this room has cached (CONTRACT "Guarantees").
            if await self._deleted.check(thread_id):
                raise NotFound(f"No thread {thread_id}")
        return room

    async def join(self, conn: Conn, thread_id: int, since: int | None) -> tuple[list[Frame], int, bool, bool]:
        """Add conn to a thread. Returns (frames to replay, seq for `subscribed`, reset, stream).

        `stream` means the replay is not in memory: the caller sends it with replay_chunks(). Then it
        sends `subscribed` and calls go_live(), which sends what arrived meanwhile: no gap and no
        duplicate at the seam.
        """
        room = await self._room(thread_id)
        room.pending[conn] = Joining()
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
            async with self.acquire() as conn:  # released before the chunk is sent: sockets never hold one
                rows = await store_events.frames_since(conn, thread_id, after, min(target - after, 1000), chunk)
            if not rows or rows[0][0] != after + 1:
                yield None  # pruned: the client must reload over HTTP
                return
            frames = [Frame(f) for s, f in rows if s <= target]
            after = rows[-1][0]
            yield frames

    def cut_off(self, conn: Conn, thread_id: int) -> bool:
        """Whether a joining socket's live frames passed PENDING_BYTES (or its room skipped a pruned
        gap): its replay is then useless, the socket will be reset."""
        room = self.rooms.get(thread_id)
        pend = room.pending.get(conn) if room is not None else None
        return pend is not None and pend.cut

    def seam(self, conn: Conn, thread_id: int, target: int, reset: bool) -> tuple[int, bool]:
        """The (seq, reset) for the `subscribed` the caller sends at once, with nothing awaited between.

        A socket cut off while it replayed gets reset at the room's seq now: every frame let go came
        before the `subscribed`, so the client's reload shows it. Holding starts again from there."""
        room = self.rooms.get(thread_id)
        pend = room.pending.get(conn) if room is not None else None
        if room is None or pend is None or not pend.cut:
            return target, reset
        room.pending[conn] = Joining()
        return room.seq, True

    def go_live(self, conn: Conn, thread_id: int, target: int) -> None:
        room = self.rooms.get(thread_id)
        if room is None or conn not in room.pending:
            return
        pend = room.pending.pop(conn)
        last = target
        if pend.cut:  # cut off after `subscribed` (while presence was read): reset it now instead
            last = room.seq
            conn.send(Frame(wire.subscribed(thread_id, last, reset=True)))
        for seq, frame in pend.frames:
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
            room.empty_since = self.clock()

    def watching(self, thread_id: int) -> list[Conn]:
        room = self.rooms.get(thread_id)
        return list(room.members) if room else []
