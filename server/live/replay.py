"""Subscribing a socket to a thread, in one call: subscribe(conn, thread_id, since, greet).

What the socket gets (CONTRACT "Live events"): every stored event after `since` (when given), then
`subscribed` with the seq it is at, then greet()'s frame (the thread's presence), then live events,
with no gap and no duplicate at the seam (docs/live.md "Subscribing with since"):

1. The room is opened if this process has none: its channel subscribed BEFORE its seq is read (no
   event can slip between), and its recent history (its last events within the bounds, rooms.py) read
   at once, so the sockets resuming here after a restart replay from memory: one read per room and
   process, not one per socket. The room is in `by_thread` before anything is awaited, so every
   socket that arrives while it opens waits for that one read (`ready`) instead of starting its own.
   A room that exists is asked whether its thread was deleted meanwhile (DeletedCheck, batched).
2. The socket joins "joining" (rooms.Joining): the live frames it misses meanwhile are held for it.
3. Its replay, up to the room's seq at the join: from the room's recent history when that reaches back
   far enough, else streamed from thread_events in chunks (a quarter of the socket's output cap), each
   sent once the socket has drained the last: never built whole, never tripping the slow-client close
   by itself. Further back than MAX_REPLAY, a seq never issued, or pruned events: `reset` instead.
   parley_history_resumes_total counts each by its source: memory, database, reset.
4. `subscribed`, greet(), then the held frames after the join's seq; the socket is a member. A socket
   whose hold passed its bound (a slow replay in a hot room) is reset at the room's seq instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .. import metrics, wire
from ..db import Acquire
from ..errors import ApiError, NotFound, Unavailable
from ..store import events as store_events
from ..store import threads as store_threads
from .backfill import Backfill
from .broker import Broker
from .channels import Channels
from .conn import Conn, Frame
from .rooms import RECENT_BYTES, Joining, Room, Rooms, Spawn

log = logging.getLogger(__name__)

MAX_REPLAY = 10_000    # a resume further back than this gets reset: reloading over HTTP is cheaper
REPLAY_QUERY_EVENTS = 1000  # events one replay read asks for at most (its bytes are bounded too)
AGAIN = "Could not subscribe now; try again"

Greet = Callable[[], Awaitable[Frame]]
RESUMED_FROM_MEMORY = metrics.HISTORY_RESUMES.labels("memory")
RESUMED_FROM_DATABASE = metrics.HISTORY_RESUMES.labels("database")
RESUMED_RESET = metrics.HISTORY_RESUMES.labels("reset")


class DeletedCheck:
    """Whether threads are deleted, asked by joins to rooms that exist already, read in batches.

    Every join must see a deletion committed before it began, so a join never shares a read that
    started before it did: joins that arrive while a read is running wait for the next read, which
    asks for all of them at once (one query however many sockets join in a storm)."""

    def __init__(self, acquire: Acquire) -> None:
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


class Subscriptions:
    """Sockets joining this process's rooms (the hub's subscribe())."""

    def __init__(self, rooms: Rooms, backfill: Backfill, broker: Broker, channels: Channels, acquire: Acquire,
                 spawn: Spawn) -> None:
        self.rooms = rooms
        self.backfill = backfill
        self.broker = broker
        self.channels = channels
        self.acquire = acquire
        self.spawn = spawn
        self.deleted = DeletedCheck(acquire)

    async def subscribe(self, conn: Conn, thread_id: int, since: int | None, greet: Greet | None = None) -> None:
        """Replay, `subscribed`, greet()'s frame, then live events (see the module's docstring).

        Raises ApiError (not_found; unavailable when the database or the pool fails, logged), the socket
        then in no room; returns quietly when the socket died or stalled during its replay."""
        try:
            room = await self._open(thread_id)
        except ApiError:
            raise
        except Exception as exc:
            log.warning("subscribe to %d failed: %s", thread_id, exc)
            raise Unavailable(AGAIN) from exc
        room.pending[conn] = Joining()
        conn.rooms.add(thread_id)
        room.empty_since = None
        target = room.seq
        reset = False
        try:
            if since is None or since == target:
                pass
            elif target - since > MAX_REPLAY or since > target:  # too far back, or a seq we never issued
                reset = True
                RESUMED_RESET.inc()
            elif (history := self.rooms.history_from(room, since, target)) is not None:
                RESUMED_FROM_MEMORY.inc()
                if not await self._from_cache(conn, history):
                    self.rooms.leave(conn, thread_id)
                    return
            else:
                streamed = await self._stream(conn, thread_id, since, target)
                (RESUMED_RESET if streamed else RESUMED_FROM_DATABASE).inc()
                if streamed is None:
                    self.rooms.leave(conn, thread_id)
                    return
                reset = streamed
        except Exception as exc:
            self.rooms.leave(conn, thread_id)
            log.warning("replay of %d failed: %s", thread_id, exc)
            raise Unavailable(AGAIN) from exc
        target, reset = self._seam(conn, thread_id, target, reset)
        conn.send(Frame(wire.subscribed(thread_id, target, reset)))
        try:
            if greet is not None:
                conn.send(await greet())
        finally:
            self._go_live(conn, thread_id, target)

    async def _open(self, thread_id: int) -> Room:
        """The room for a thread, subscribed to its channel BEFORE its seq is read (no event can slip between)."""
        rooms = self.rooms
        room = rooms.by_thread.get(thread_id)
        if room is not None:
            assert room.ready is not None
            await asyncio.shield(room.ready)
            # A room outlives its thread (watchers, linger): a deleted thread stops at once for every new
            # subscriber on every process, whatever this room has cached (CONTRACT "Guarantees").
            if await self.deleted.check(thread_id):
                raise NotFound(f"No thread {thread_id}")
            return room
        room = rooms.new(thread_id)
        room.ready = asyncio.get_running_loop().create_future()
        try:
            await self.broker.subscribe(self.channels.thread(thread_id))
            async with self.acquire() as conn:
                seq = await store_threads.live_seq(conn, thread_id)
                if seq is None:
                    raise NotFound(f"No thread {thread_id}")
                recent = await store_events.recent_frames(conn, thread_id, seq, rooms.history_events, RECENT_BYTES)
            metrics.HISTORY_WARM_READS.inc()
            room.seq = seq
            rooms.warm(room, recent)
            room.ready.set_result(None)
        except BaseException as exc:
            rooms.drop(thread_id, room)
            self.spawn(self._unsubscribe_quietly(thread_id), "room-unsubscribe")
            room.ready.set_exception(exc)
            room.ready.exception()  # retrieved: joiners re-raise it themselves
            raise
        # Frames that arrived while we read seq: keep those after it, in order.
        held = room.drop_held()
        for seq in sorted(held):
            rooms.accept(room, seq, held[seq])
        if room.dropped > room.seq:  # more arrived than could be held: read them from thread_events
            self.backfill.start(room)
        return room

    async def _unsubscribe_quietly(self, thread_id: int) -> None:
        try:
            if thread_id not in self.rooms.by_thread:
                await self.broker.unsubscribe(self.channels.thread(thread_id))
        except Exception:
            pass

    async def _from_cache(self, conn: Conn, replay: list[Frame]) -> bool:
        """Send a replay from the room's cache (up to RECENT_BYTES), paced like a streamed one. False if
        the socket died or stalled."""
        limit = chunk_bytes(conn)
        sent = 0
        for frame in replay:
            if sent and sent + len(frame.json) > limit:
                if not await conn.drained(0):
                    return False
                sent = 0
            conn.send(frame)
            sent += len(frame.json)
        return True

    async def _stream(self, conn: Conn, thread_id: int, since: int, target: int) -> bool | None:
        """Send the stored events since+1..target, read and sent a chunk at a time (a pooled connection is
        never held while a socket drains). Returns whether the socket must be reset (pruned events, or
        cut off meanwhile: the rest is not worth reading); None if it died or stalled."""
        limit = chunk_bytes(conn)
        after = since
        while after < target:
            metrics.REPLAY_QUERIES.inc()
            async with self.acquire() as db:
                rows = await store_events.frames_since(db, thread_id, after, min(target - after, REPLAY_QUERY_EVENTS),
                                                       limit)
            if not rows or rows[0][0] != after + 1:
                return True  # pruned: the client must reload over HTTP
            for seq, data in rows:
                if seq <= target:
                    conn.send(Frame(data))
            after = rows[-1][0]
            if not await conn.drained(0):
                return None
            room = self.rooms.by_thread.get(thread_id)
            pend = room.pending.get(conn) if room is not None else None
            if pend is not None and pend.cut:  # it will be reset (_seam): stop reading
                break
        return False

    def _seam(self, conn: Conn, thread_id: int, target: int, reset: bool) -> tuple[int, bool]:
        """The (seq, reset) for the `subscribed` sent at once, with nothing awaited between.

        A socket cut off while it replayed gets reset at the room's seq now: every frame let go came
        before the `subscribed`, so the client's reload shows it. Holding starts again from there."""
        room = self.rooms.by_thread.get(thread_id)
        pend = room.pending.get(conn) if room is not None else None
        if room is None or pend is None or not pend.cut:
            return target, reset
        room.pending[conn] = Joining()
        return room.seq, True

    def _go_live(self, conn: Conn, thread_id: int, target: int) -> None:
        room = self.rooms.by_thread.get(thread_id)
        if room is None or conn not in room.pending:
            return
        pend = room.pending.pop(conn)
        last = target
        if pend.cut:  # cut off after `subscribed` (while greet() ran): reset it now instead
            last = room.seq
            conn.send(Frame(wire.subscribed(thread_id, last, reset=True)))
        for seq, frame in pend.frames:
            if seq > last:
                conn.send(frame)
                last = seq
        room.members[conn] = last
        metrics.SUBSCRIPTIONS.inc()


def chunk_bytes(conn: Conn) -> int:
    """How much of a replay goes out before waiting for the socket to drain: a quarter of its output cap."""
    return max(16384, conn.max_pending // 4)
