"""Presence as sockets see it: per scope, what was last read, its frame, and when to send it again.

A scope's view is what this process last read from Redis (presence_shared.py: a bounded read, the top
50, the count, the guests) with this process's own newest arrivals laid over it until they are read
back (presence_local.py); without Redis, the local counts themselves. Its frame is encoded once until
something changes, the same bytes for every socket.

A doorbell (or a local change, without Redis) marks a scope dirty; it is read again and recomputed at
most once per interval (COALESCE, stretched for huge fan-outs up to MAX_COALESCE), never twice at once,
and its frame goes to the scope's sockets only if what it shows changed. A socket hears a scope only
after its own join frame (hello, or `subscribed` + the thread's presence), and a broadcast skips the
sockets whose join frame said the same.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Collection
from typing import Protocol

from .. import metrics, wire
from .channels import Scope
from .conn import Conn, Frame
from .presence_local import TOP, Brief, Counts
from .presence_shared import Shared
from .rooms import Spawn

log = logging.getLogger(__name__)

COALESCE = 1.0               # seconds: at most one recompute (and frame) per scope per this interval...
MAX_COALESCE = 10.0          # ...stretched up to this for huge fan-outs; 15 s grace + 10 s stays within 30 s
FANOUT_BUDGET = 16 << 20     # bytes/s of presence frames one scope may write to this process's sockets
FANOUT_SENDS = 8_000         # ...and sends/s: each is a write() of its own, which costs more than the bytes
GUEST_SENDS = 1_000          # sends/s of a scope's frames when only its guest count moved (guest_interval)

Key = tuple[tuple[int, ...], int, int]  # what a frame shows: user ids in order, count, guests


class Watchers(Protocol):
    """Who hears a scope (the hub): every open socket for the site, a room's sockets for a thread."""

    @property
    def conns(self) -> Collection[Conn]: ...

    def watching(self, thread_id: int) -> list[Conn]: ...

    def has_watchers(self, thread_id: int) -> bool: ...


class ScopeView:
    """What this process last read (or computed) for a scope, and when."""

    __slots__ = ("top", "count", "guests", "mine", "sent_key", "sent_at", "ran_at", "interval", "dirty", "timer",
                 "running", "lock", "frame", "frame_key", "guests_moved", "joined", "welcomed")

    def __init__(self) -> None:
        self.top: list[Brief] | None = None  # from Redis: at most TOP users, newest first; None: not read
        self.count = 0                       # distinct users present, all processes (ZCARD)
        self.guests = 0                      # guest sockets, all processes
        self.mine = 0                        # our own guests as Redis had them at that read
        self.sent_key: Key | None = None
        self.sent_at = -MAX_COALESCE  # clock time of the last broadcast
        self.ran_at = -COALESCE   # clock time of the last recompute
        self.interval = COALESCE
        self.dirty = False
        self.timer: asyncio.TimerHandle | None = None
        self.running = False
        self.lock = asyncio.Lock()
        self.frame: Frame | None = None  # the current frame, encoded; None when something changed
        self.frame_key: Key | None = None
        self.guests_moved = False  # only the guest count changed since the frame was encoded
        # Sockets that got a frame on joining since the last broadcast, with what it said: the
        # broadcast skips them when it says the same (else every joiner would get its own join twice).
        self.joined: dict[Conn, Key] = {}
        # Sockets that have had their join frame: a broadcast goes only to these, so a socket never hears
        # of a scope before its hello or `subscribed` + join frame (ws.py awaits in between).
        self.welcomed: set[Conn] = set()


def interval(frame_bytes: int, sockets: int, base: float = COALESCE) -> float:
    """Coalescing interval for a scope: 1 s, or longer when one broadcast a second would exceed the byte
    or the send budget, never above MAX_COALESCE.

    Frames are bounded (≤ TOP briefs, ~4 KB), so bytes stretch it past ~4,000 sockets of one scope on one
    process. Sends stretch it past FANOUT_SENDS sockets whatever the frame's size: while thousands connect
    at once, every second's frame to every socket of the room made presence the largest cost of the
    storm, and a longer one made the storm longer still (bench/README.md, "growth").
    """
    return min(MAX_COALESCE, max(base, frame_bytes * sockets / FANOUT_BUDGET, sockets / FANOUT_SENDS))


def guest_interval(sockets: int, base: float = COALESCE) -> float:
    """How long after a broadcast one that changes only the guest count may follow: 1 s for up to
    GUEST_SENDS sockets of the scope here, then longer, up to MAX_COALESCE.

    In a connect storm of guests the count moves every instant, and each interval's frame went to every
    socket of the scope: 18 % of a 5,000-guest storm's CPU, after the joins themselves had been made cheap
    (bench/README.md, "The socket floor"). A joiner's own frame counts it exactly either way; people who
    come or go are broadcast at the usual interval."""
    return min(MAX_COALESCE, max(base, sockets / GUEST_SENDS))


class Views:
    """Every scope's view on this process, and the coalesced broadcasts of their frames."""

    def __init__(self, counts: Counts, shared: Shared | None, watchers: Watchers, spawn: Spawn,
                 coalesce: float = COALESCE, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts = counts
        self.shared = shared  # None: no Redis, the local counts are the whole truth
        self.watchers = watchers
        self.spawn = spawn
        self.coalesce = coalesce
        self.clock = clock
        self.views: dict[Scope, ScopeView] = {}
        self.stopped = False

    def view(self, scope: Scope) -> ScopeView:
        view = self.views.get(scope)
        if view is None:
            view = self.views[scope] = ScopeView()
        return view

    def watched(self, scope: Scope) -> bool:
        return not isinstance(scope, int) or self.watchers.has_watchers(scope)

    def changed(self, scope: Scope, people: bool = True) -> None:
        """What this process holds in the scope changed: its frame is stale.

        When someone came or went the frame is composed and encoded again for the next joiner. When
        only the guest count moved, just its last field is: in a connect storm of guests every socket
        composed and encoded the site's and its thread's frames anew (bench/README.md, "The socket
        floor"); now it costs a bytes concatenation."""
        view = self.views.get(scope)
        if view is not None:
            if people:
                view.frame = None
            else:
                view.guests_moved = True

    def mark_dirty(self, scope: Scope) -> None:
        if self.stopped:
            return
        view = self.view(scope)
        view.dirty = True
        if view.timer is None and not view.running:
            delay = max(0.0, view.ran_at + view.interval - self.clock())
            view.timer = asyncio.get_running_loop().call_later(delay, self._publish_soon, scope)

    def mark_all_dirty(self) -> None:
        self.mark_dirty("site")
        for s in list(self.views):
            if isinstance(s, int) and self.watchers.has_watchers(s):
                self.mark_dirty(s)

    def heard(self, scope: Scope) -> None:
        """A doorbell named the scope: read it again if anyone here watches it, else forget what was read."""
        if self.watched(scope):
            self.mark_dirty(scope)
        elif (view := self.views.get(scope)) is not None:
            view.top = None  # nobody here watches it: read it afresh when someone does

    def _publish_soon(self, scope: Scope) -> None:
        view = self.views.get(scope)
        if view is None:
            return
        view.timer = None
        view.running = True
        self.spawn(self._publish(scope, view), "presence-snapshot")

    async def _publish(self, scope: Scope, view: ScopeView) -> None:
        """Recompute one scope (one per interval, never two at once) and push it if what it shows changed."""
        try:
            view.dirty = False
            view.ran_at = self.clock()
            try:
                await self.refresh(scope, view)
            except Exception as exc:
                log.warning("presence snapshot of %s failed: %s", scope, exc)
            started = time.thread_time()
            frame, key = self.current(scope, view)
            joined, view.joined = view.joined, {}
            sent = 0
            if key == view.sent_key:
                # Nothing changed since the last broadcast, but a socket that joined in between may have
                # been told of a state that has since been undone: correct just those.
                for conn, told in joined.items():
                    if told != key and conn.alive and (scope == "site" or scope in conn.rooms):
                        conn.send(frame)
                        sent += 1
            elif (view.sent_key is not None and key[:2] == view.sent_key[:2]
                  and self.clock() < view.sent_at + guest_interval(len(view.welcomed), self.coalesce)):
                # Only the guest count moved, and too soon after the last broadcast: look again after the
                # interval; the joiners since keep what they were told, for the broadcast that follows.
                joined.update(view.joined)
                view.joined = joined
                view.dirty = True
            else:
                view.sent_key = key
                view.sent_at = self.clock()
                watchers = self.watchers.watching(scope) if isinstance(scope, int) else self.watchers.conns
                view.welcomed.intersection_update(watchers)  # forget sockets that left
                if scope == "site":
                    metrics.PRESENCE_USERS.set(key[1])
                    metrics.PRESENCE_GUESTS.set(key[2])
                for conn in [c for c in watchers if c in view.welcomed]:
                    if joined and joined.get(conn) == key:
                        continue
                    conn.send(frame)
                    sent += 1
                view.interval = interval(len(frame.json), sent, self.coalesce)
            metrics.PRESENCE_FRAMES.inc(sent)
            metrics.PRESENCE_FRAME_BYTES.inc(sent * len(frame.json))
            metrics.PRESENCE_CPU.inc(time.thread_time() - started)
        finally:
            view.running = False
            if view.dirty:  # changed again while we read: go again after the interval
                view.dirty = False
                self.mark_dirty(scope)

    async def refresh(self, scope: Scope, view: ScopeView) -> None:
        """Read what a frame of this scope shows from Redis: O(TOP) bytes, however many are present."""
        view.frame = None
        if self.shared is None:
            view.top = []
            return
        gen = self.shared.flush_gen  # writes that completed before this read is sent are in its answer
        view.count, view.guests, view.mine, view.top = await self.shared.view(scope, TOP)
        loc = self.counts.get(scope)
        if loc is not None and loc.pending:
            for uid in [u for u, g in loc.pending.items() if g <= gen]:
                del loc.pending[uid]
        view.frame = None

    def compose(self, scope: Scope, view: ScopeView) -> tuple[list[Brief], int, int]:
        """(at most TOP users, newest first; count; guests): Redis as last read, with this process live."""
        if self.shared is None:
            return self.counts.top(scope)
        loc = self.counts.get(scope)
        top = view.top or []
        count = view.count
        guests = view.guests - view.mine + (loc.guests if loc is not None else 0)
        if loc is not None and loc.pending:
            # Our newest arrivals, not yet read back: first (they are the most recent), and counted.
            shown = {u["id"] for u in top}
            new = [loc.briefs[u] for u in itertools.islice(
                (u for u in reversed(loc.pending) if u not in shown), TOP)]
            count += len(loc.pending) - sum(1 for u in shown if u in loc.pending)
            top = (new + top)[:TOP]
        return top, max(count, len(top)), max(guests, 0)

    def current(self, scope: Scope, view: ScopeView) -> tuple[Frame, Key]:
        """The scope's frame and what it shows, encoded once until something changes."""
        if view.frame is None or view.frame_key is None:
            users, count, guests = self.compose(scope, view)
            key: Key = (tuple(u["id"] for u in users), count, guests)
            view.frame = Frame(wire.presence(users, guests, None if scope == "site" else int(scope), count))
            view.frame_key = key
            view.guests_moved = False
        elif view.guests_moved:
            view.guests_moved = False
            guests = self.guests(scope, view)
            ids, count, was = view.frame_key
            if guests != was:
                json = view.frame.json
                head = json[:json.rindex(b'"guests":') + 9]  # `guests` is the frame's last field (wire.presence)
                view.frame = Frame(b"%s%d}" % (head, guests))
                view.frame_key = (ids, count, guests)
        return view.frame, view.frame_key

    def guests(self, scope: Scope, view: ScopeView) -> int:
        """The guest count compose() would give, without composing the users."""
        loc = self.counts.get(scope)
        if self.shared is None:
            return loc.guests if loc is not None else 0
        return max(view.guests - view.mine + (loc.guests if loc is not None else 0), 0)

    async def ensure_read(self, scope: Scope, view: ScopeView) -> None:
        # A watched scope's view is kept current by the doorbell and the heartbeat; any other is read now.
        if view.top is None or not self.watched(scope):
            async with view.lock:
                if view.top is None or not self.watched(scope):
                    try:
                        await self.refresh(scope, view)
                    except Exception as exc:
                        log.warning("presence read failed: %s", exc)
                        view.top = view.top or []

    async def frame(self, scope: Scope, conn: Conn | None = None) -> Frame:
        """The scope's frame for a socket that just joined (encoded once until something changes)."""
        view = self.view(scope)
        await self.ensure_read(scope, view)
        if view.frame is None:  # timed only when composed: the thread CPU clock is a system call
            started = time.thread_time()
            frame, key = self.current(scope, view)
            metrics.PRESENCE_CPU.inc(time.thread_time() - started)
        else:
            frame, key = self.current(scope, view)
        if conn is not None:
            view.joined[conn] = key
            view.welcomed.add(conn)
        return frame

    async def snapshot(self, scope: Scope) -> tuple[list[Brief], int, int]:
        """(users as a frame shows them, count, guests) now."""
        view = self.view(scope)
        await self.ensure_read(scope, view)
        return self.compose(scope, view)

    def forget_unwatched(self) -> None:
        """Drop the views of threads nobody here watches and nothing is pending for."""
        for scope, view in list(self.views.items()):
            if (isinstance(scope, int) and self.counts.get(scope) is None and not view.running
                    and view.timer is None and not self.watchers.has_watchers(scope)):
                del self.views[scope]

    def stop(self) -> None:
        self.stopped = True
        for view in self.views.values():
            if view.timer is not None:
                view.timer.cancel()
