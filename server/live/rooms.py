"""Rooms: thread → this process's sockets, each event delivered in seq order, once (docs/live.md).

Per thread (a Room) `seq` is the last event handed to its sockets. An event frame from the broker is
delivered only if it is exactly seq + 1; a later one means a gap (a lost or reordered publish): it is
held and the room is handed to the backfill (backfill.py), which reads the missing events from
thread_events; an older one is a duplicate and dropped.

Delivery is one Frame (bytes built once) written to each socket in turn, nothing awaited. Large
rooms are written in chunks with a yield in between, so a hot thread with thousands of watchers does
not starve other threads or HTTP requests; a large room that fell behind writes its waiting events to
each socket in ONE write.

What a room holds is bounded in bytes: frames past a gap (per room and per process), the replay cache
of its last frames (per room and per process), the live frames held for a socket whose replay is
still streaming (per socket; replay.py).

The replay cache is the thread's recent history (docs/live.md "The recent history a resume reads"): its
last RECENT events (PARLEY_HISTORY_EVENTS), none older than HISTORY_SECONDS (PARLEY_HISTORY_SECONDS), always
contiguous and ending at the room's seq. A resume within it is served from memory; beyond it, from
thread_events.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from .. import metrics, wire
from .conn import Conn, Frame

CHUNK = 512            # sockets written per loop turn in a large room
MAX_BATCH = 64         # queued events a large room writes to each socket in one go when it is behind
RECENT = 64            # recent frames kept per room: reconnects with a recent `since` need no query
HISTORY_SECONDS = 300.0  # ...none older than this (seconds since commit): the history is for the reconnects
#                          of a restart or a network blip; an older resume reads thread_events, and a quiet
#                          room's old frames are let go so the hot rooms' recent ones fit RECENT_TOTAL
RECENT_BYTES = 512 * 1024  # ...and at most this many bytes of them (always the newest one, whatever its size)
RECENT_TOTAL = 64 << 20    # ...and all rooms of this process together at most this many (rooms then keep one)
HELD_BYTES = 1 << 20   # frames held per room while it is behind; past this they are dropped and read back
#                        from thread_events (the source of truth) instead of buffering without end
HELD_TOTAL = 64 << 20  # ...and all rooms of this process together at most this many (10,000 rooms behind a
#                        gap would otherwise hold 10 GiB); a room that would pass it drops its own the same way
PENDING_BYTES = 1 << 20  # live frames held for one joining socket while its replay streams; past this it stops
#                          holding for that socket, which gets `subscribed` with reset (reload over HTTP) instead

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[Any]"]


class Tally:
    """Bytes held by every room of one process (shared by its rooms, kept under HELD_TOTAL by Room.hold)."""

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
                 "recent_at", "recent_bytes", "outbox", "task", "behind", "retry_at", "delay", "empty_since", "pending",
                 "tally")

    def __init__(self, thread_id: int, tally: Tally | None = None) -> None:
        self.thread_id = thread_id
        self.tally = tally if tally is not None else Tally()  # the process's, shared by all its rooms
        self.members: dict[Conn, int] = {}       # conn → last seq it was sent
        self.pending: dict[Conn, Joining] = {}    # joining conns: live frames held until their replay ends
        self.seq = 0
        self.ready: asyncio.Future[None] | None = None  # done once seq is read (replay.py opens rooms)
        self.held: dict[int, Frame] = {}          # frames that arrived ahead of a gap (HELD_BYTES at most)
        self.held_bytes = 0
        self.dropped = 0                          # the highest seq dropped from `held`: read up to it from the db
        self.recent: deque[tuple[int, Frame]] = deque()  # bounded by RECENT and RECENT_BYTES in remember()
        self.recent_at: deque[float] = deque()    # when each of `recent` reached the room (the rooms' clock; for
        #                                           those read when it opened, their commit time)
        self.recent_bytes = 0
        self.outbox: deque[tuple[int, Frame]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.behind = False                       # waiting for the backfill (frames are held meanwhile)
        self.retry_at = 0.0                       # when the backfill may read this room next (its clock)
        self.delay = 0.0                          # the next back-off if that read does not fill the gap
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

    def remember(self, seq: int, frame: Frame, tight: bool = False, at: float = 0.0, keep: int = RECENT) -> int:
        """Keep a frame in `recent` (only it when `tight`), committed at `at`, at most `keep` of them; a
        deletion drops what came before (it may hold the deleted text). Returns the change in bytes kept."""
        recent = self.recent
        before = self.recent_bytes
        if tight or b'"name":"post.deleted"' in frame.json[:160]:
            self.forget_recent()
        recent.append((seq, frame))
        self.recent_at.append(at)
        self.recent_bytes += len(frame.json)
        while len(recent) > 1 and (len(recent) > keep or self.recent_bytes > RECENT_BYTES):
            self.recent_bytes -= len(recent.popleft()[1].json)
            self.recent_at.popleft()
        return self.recent_bytes - before

    def expire(self, before: float) -> int:
        """Let go of the frames committed before `before` (the oldest first: what stays is still contiguous
        and ends at the room's seq). Returns the change in bytes kept."""
        recent, at = self.recent, self.recent_at
        kept = self.recent_bytes
        while at and at[0] < before:
            at.popleft()
            self.recent_bytes -= len(recent.popleft()[1].json)
        return self.recent_bytes - kept

    def forget_recent(self) -> None:
        self.recent.clear()
        self.recent_at.clear()
        self.recent_bytes = 0


class Rooms:
    """This process's rooms by thread id, their ordering and the delivery to their sockets.

    `on_gap(room)` is called when a ready room sees an event past its seq (the backfill takes it from
    there); `spawn` runs the chunked delivery of large rooms as tasks the hub owns."""

    def __init__(self, spawn: Spawn, on_gap: Callable[[Room], None],
                 clock: Callable[[], float] = time.monotonic, history_events: int = RECENT,
                 history_seconds: float = HISTORY_SECONDS) -> None:
        self.by_thread: dict[int, Room] = {}
        self.history_events = history_events    # the recent history's bounds (PARLEY_HISTORY_EVENTS, ...SECONDS)
        self.history_seconds = history_seconds
        self.tally = Tally()   # bytes in every room's `held`, kept under HELD_TOTAL
        self.recent_total = 0  # bytes in every room's `recent`, kept under RECENT_TOTAL
        self.committed: dict[tuple[int, int], float] = {}  # (thread, seq) → commit time, for the latency metric
        self.spawn = spawn
        self.on_gap = on_gap
        self.clock = clock

    def new(self, thread_id: int) -> Room:
        room = self.by_thread[thread_id] = Room(thread_id, self.tally)
        return room

    def drop(self, thread_id: int, room: Room) -> bool:
        """Forget a room (if it is still the thread's): what it held and cached is let go."""
        if self.by_thread.get(thread_id) is not room:
            return False
        del self.by_thread[thread_id]
        self.recent_total -= room.recent_bytes
        room.drop_held()
        return True

    def watching(self, thread_id: int) -> list[Conn]:
        room = self.by_thread.get(thread_id)
        return list(room.members) if room else []

    def has_watchers(self, thread_id: int) -> bool:
        """watching() without the copy: asked on every join, where a room's list would cost its size."""
        room = self.by_thread.get(thread_id)
        return bool(room and room.members)

    def leave(self, conn: Conn, thread_id: int) -> None:
        conn.rooms.discard(thread_id)
        room = self.by_thread.get(thread_id)
        if room is None:
            return
        room.pending.pop(conn, None)
        if room.members.pop(conn, None) is not None:
            metrics.SUBSCRIPTIONS.dec()
        if not room.members and not room.pending:
            room.empty_since = self.clock()

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
            self.deliver(room, seq, frame)
            return
        room.hold(seq, frame)
        metrics.GAP_BACKFILLS.inc()
        self.on_gap(room)

    def note_commit(self, thread_id: int, seq: int) -> None:
        if len(self.committed) > 10_000:
            self.committed.clear()
        self.committed[(thread_id, seq)] = time.perf_counter()

    def remember(self, room: Room, seq: int, frame: Frame, at: float | None = None) -> None:
        """Add a frame to the room's replay cache, within this process's RECENT_TOTAL."""
        self.recent_total += room.remember(seq, frame, tight=self.recent_total > RECENT_TOTAL,
                                           at=self.clock() if at is None else at, keep=self.history_events)

    def warm(self, room: Room, recent: list[tuple[int, bytes, float]]) -> None:
        """Fill a new room's replay cache with the stored events just read, (seq, frame, seconds since its
        commit), if they end at its seq; those already past the age bound are not kept."""
        frames = [r for r in recent if r[0] <= room.seq]
        if not frames or frames[-1][0] != room.seq or any(b[0] != a[0] + 1 for a, b in zip(frames, frames[1:])):
            return
        # Only what follows the last event past the age bound: commit times need not rise with seq (a
        # transaction's time is its start, its seq comes with the thread's row lock), and skipping one old
        # event in the middle would leave a hole a resume would replay across.
        old = [i for i, r in enumerate(frames) if r[2] > self.history_seconds]
        now = self.clock()
        for seq, f, age in frames[old[-1] + 1 if old else 0:]:
            self.remember(room, seq, Frame(f), at=now - age)

    def history_from(self, room: Room, since: int, upto: int) -> list[Frame] | None:
        """The frames since < seq <= upto from the room's recent history, if it reaches back that far within
        its age bound; None when it does not (the replay then reads thread_events)."""
        self.expire(room)
        recent = room.recent
        if not recent or recent[0][0] > since + 1:
            return None
        return [f for s, f in recent if since < s <= upto]

    def expire(self, room: Room) -> None:
        """Let go of the room's history older than the age bound."""
        self.recent_total += room.expire(self.clock() - self.history_seconds)

    def expire_all(self) -> None:
        """The reconcile round: quiet rooms let go of their old history (memory for the hot ones)."""
        before = self.clock() - self.history_seconds
        for room in self.by_thread.values():
            if room.recent_at and room.recent_at[0] < before:
                self.recent_total += room.expire(before)

    # -- delivery --------------------------------------------------------

    def deliver(self, room: Room, seq: int, frame: Frame) -> None:
        """Hand the room's next event to its sockets (and to the joining ones' holds)."""
        committed = self.committed.pop((room.thread_id, seq), None)
        if committed is not None:
            metrics.FANOUT_LATENCY.observe(time.perf_counter() - committed)
        room.seq = seq
        self.remember(room, seq, frame)
        for pend in room.pending.values():
            pend.add(seq, frame)
        members = room.members
        if not room.outbox and len(members) <= CHUNK:
            self._write(room, seq, frame, list(members))
            return
        room.outbox.append((seq, frame))
        if room.task is None:
            room.task = self.spawn(self._drain(room), f"deliver-{room.thread_id}")

    def reset(self, room: Room, head: int) -> None:
        """Go on from `head` across a hole: every socket gets `subscribed` with reset at it (the client
        reloads over HTTP), the replay cache is emptied, joining sockets are cut off (replay.py resets them)."""
        room.seq = head
        for seq in [s for s in room.held if s <= head]:
            room.unhold(seq)
        if room.dropped <= head:
            room.dropped = 0
        self.recent_total -= room.recent_bytes  # the cache would replay across the hole
        room.forget_recent()
        frame = Frame(wire.subscribed(room.thread_id, head, reset=True))
        for conn in room.members:
            room.members[conn] = head  # queued older frames are not sent after the reset
            conn.send(frame)
        for pend in room.pending.values():  # replaying sockets would continue across the hole
            pend.stop()

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
