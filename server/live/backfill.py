"""The backfill: what a room missed, read from thread_events (ARCHITECTURE rule 1; docs/live.md "Gaps").

A room is behind after a gap in seq, a broker reconnect (every room) or a reconcile round that saw
the database ahead of it. Behind, it holds what arrives (rooms.py) until this reads the missed events.
Reads are batched: one task per process reads the missed events of every room that is behind in ONE
query (store.events.frames_after), BACKFILL_ROOMS rooms at a time, so a reconnect with thousands of
rooms costs a few queries, not a task per room queued on the pool.

A gap the database cannot fill yet (its event not visible yet, or the pool failed) is retried with
exponential back-off; one it never will (the event was pruned by retention) resets the room's
sockets at the database's head, as a resume from a pruned `since` does (Rooms.reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from .. import metrics
from ..db import Acquire
from ..store import events as store_events
from ..store import threads as store_threads
from .conn import Frame
from .rooms import Room, Rooms, Spawn

log = logging.getLogger(__name__)

BACKFILL_ROOMS = 256   # rooms read per backfill query (a reconnect with more rooms takes several)
BACKFILL_BUDGET = 1 << 20  # event data one backfill query reads, shared by its rooms...
BACKFILL_ROOM_MIN = 16 * 1024  # ...but at least this much (and one event) per room
BACKOFF_FIRST = 0.05   # seconds before retrying a gap the database did not fill (or a failed read)...
BACKOFF_MAX = 2.0      # ...doubling up to this, back to BACKOFF_FIRST once the room caught up


class Backfill:
    """The rooms of this process that are behind, and the one task that reads for them.

    `clock` and `sleep` (the back-off wait) are parameters, so unit tests never sleep."""

    def __init__(self, rooms: Rooms, acquire: Acquire, spawn: Spawn, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.rooms = rooms
        self.acquire = acquire
        self.spawn = spawn
        self.clock = clock
        self.sleep = sleep if sleep is not None else self._sleep_or_wake
        self.behind: dict[int, Room] = {}  # rooms waiting for the backfill, read together
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a room fell behind: the backfiller stops waiting
        self.queries = 0

    def start(self, room: Room) -> None:
        """Queue the room for the backfiller (a room already queued keeps its back-off)."""
        if room.ready is None or not room.ready.done() or room.behind:
            return
        room.behind = True
        room.retry_at = self.clock()
        room.delay = BACKOFF_FIRST
        self.behind[room.thread_id] = room
        self._wake.set()
        if self.task is None:
            self.task = self.spawn(self._loop(), "backfill")

    def forget(self, room: Room) -> None:
        """The room is gone (it lingered out): nothing more to read for it."""
        if self.behind.get(room.thread_id) is room:
            del self.behind[room.thread_id]

    async def reconcile(self) -> None:
        """One round of the safety net for a publish lost without a reconnect: every ready room's seq
        against the database's; a room behind is queued."""
        rooms = self.rooms.by_thread
        ids = [tid for tid, r in rooms.items() if r.ready is not None and r.ready.done()]
        if not ids:
            return
        async with self.acquire() as conn:
            seqs = await store_threads.seqs(conn, ids)
        for tid, seq in seqs.items():
            room = rooms.get(tid)
            if room is not None and seq > room.seq:
                self.start(room)

    async def _sleep_or_wake(self, delay: float) -> None:
        """Wait `delay` seconds, or less if a room falls behind meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    async def _loop(self) -> None:
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
                    await self._once(due[i:i + BACKFILL_ROOMS])
        finally:
            self.task = None

    async def _once(self, rooms: list[Room]) -> None:
        """One query for these rooms' missed events; each gets them in order, then what it held."""
        budget = max(BACKFILL_ROOM_MIN, BACKFILL_BUDGET // len(rooms))
        afters = [(r.thread_id, r.seq) for r in rooms]  # no room moves meanwhile: behind, it only holds
        self.queries += 1
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
            if self.rooms.by_thread.get(room.thread_id) is room and room.behind:
                head, frames = found.get(room.thread_id, (None, []))
                self._catch_up(room, head, frames)

    def _catch_up(self, room: Room, head: int | None, frames: list[tuple[int, bytes]]) -> None:
        before = room.seq
        # Seqs are taken under the thread's row lock and stored in the same transaction, and the head
        # and the events come from one snapshot: if the stored events after room.seq do not start at
        # room.seq + 1, that event is gone (pruned by retention), not late. Retrying cannot fill it.
        if head is not None and head > room.seq and (not frames or frames[0][0] > room.seq + 1):
            log.warning("thread %d: event %d is pruned; resetting its %d sockets at seq %d",
                        room.thread_id, room.seq + 1, len(room.members) + len(room.pending), head)
            self.rooms.reset(room, head)  # sent after the read that saw `head`: the reload shows all of it
        deliver = self.rooms.deliver
        for seq, data in frames:
            if seq == room.seq + 1:
                room.unhold(seq)
                deliver(room, seq, Frame(data))
        while room.seq + 1 in room.held:
            frame = room.unhold(room.seq + 1)
            assert frame is not None
            deliver(room, room.seq + 1, frame)
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

    def _back_off(self, room: Room) -> None:
        room.retry_at = self.clock() + room.delay
        room.delay = min(room.delay * 2, BACKOFF_MAX)
