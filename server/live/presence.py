"""Active Now and thread watchers: soft state with leases (docs/presence.md).

Each process owns the counts of its own sockets, per scope ("site" or a
thread id), and mirrors who is present in Redis as one hash per scope
({ns} is the deployment's namespace, parley:<id>, see broker.Broker):
  {ns}:pr:{proc}:{scope}   field user_id → User brief JSON, field "g" → guest sockets
  {ns}:pr:procs            sorted set: proc → lease expiry (unix time)
Every key carries the lease as its TTL and is renewed on a jittered
heartbeat; a process that dies stops renewing and its entries expire (and
its proc entry falls out of the live range). A graceful shutdown deletes
them at once.

A change is written in a batch (at most every FLUSH seconds): only the
fields that changed (HSET/HDEL), then one PUBLISH on {ns}:presence naming
the scopes. Each process then recomputes those snapshots at most once per
COALESCE seconds per scope (longer for very large frames, see _interval) and
sends a frame to its local sockets only if the snapshot changed: one
encode per scope, the same bytes to every socket. A user whose last socket
closes lingers for the grace period, so a reload or a brief drop shows
nothing; an explicit unsubscribe leaves the thread at once.

Without Redis the same class runs with no store: the local state is the
whole truth (one process).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import Any

from .. import metrics, wire
from .conn import Conn, Frame

log = logging.getLogger(__name__)

Scope = str | int  # "site" or a thread id
Brief = dict[str, Any]
FLUSH = 0.1                  # seconds: batch local changes into one Redis pipeline
COALESCE = 1.0               # seconds: at most one recompute (and frame) per scope per this interval...
MAX_COALESCE = 10.0          # ...stretched up to this for huge scopes; 15 s grace + 10 s stays within 30 s
FANOUT_BUDGET = 16 << 20     # bytes/s of presence frames one scope may write to this process's sockets
RETRY = 1.0                  # seconds before a failed flush is tried again


class Local:
    """This process's sockets in one scope, and what of it Redis has not heard yet."""

    __slots__ = ("users", "briefs", "guests", "linger", "changed", "guests_changed", "rewrite")

    def __init__(self) -> None:
        self.users: dict[int, int] = {}     # user id → open sockets here
        self.briefs: dict[int, Brief] = {}  # user id → brief, while present or lingering
        self.guests = 0
        self.linger: dict[int, float] = {}  # user id → when the grace period ends
        self.changed: set[int] = set()      # user ids to HSET/HDEL at the next flush
        self.guests_changed = False
        self.rewrite = True                 # write the whole hash (first write, or Redis lost it)

    def empty(self) -> bool:
        return not self.briefs and not self.guests


class ScopeView:
    """What this process last computed for a scope, and when."""

    __slots__ = ("parts", "sent_key", "ran_at", "interval", "dirty", "timer", "running", "lock", "frame",
                 "frame_key", "joined")

    def __init__(self) -> None:
        self.parts: dict[str, tuple[dict[int, Brief], int]] | None = None  # other procs' entries, as last read
        self.sent_key: tuple[tuple[int, ...], int] | None = None
        self.ran_at = -COALESCE   # monotonic time of the last recompute
        self.interval = COALESCE
        self.dirty = False
        self.timer: asyncio.TimerHandle | None = None
        self.running = False
        self.lock = asyncio.Lock()
        self.frame: Frame | None = None  # the current snapshot, encoded; None when something changed
        self.frame_key: tuple[tuple[int, ...], int] | None = None
        # Sockets that got a snapshot on joining since the last broadcast, with what it said: the
        # broadcast skips them when it says the same (else every joiner would get its own join twice).
        self.joined: dict[Conn, tuple[tuple[int, ...], int]] = {}




def _snapshot_key(users: list[Brief], guests: int) -> tuple[tuple[int, ...], int]:
    return tuple(sorted(u["id"] for u in users)), guests


def _interval(frame_bytes: int, sockets: int) -> float:
    """Coalescing interval for a scope: 1 s, or longer when one broadcast would exceed the byte budget.

    A snapshot is O(users) and goes to O(sockets), so a full list on every
    change is quadratic; past FANOUT_BUDGET bytes per second we send it less
    often (never less than every MAX_COALESCE) instead of flooding sockets.
    """
    return min(MAX_COALESCE, max(COALESCE, frame_bytes * sockets / FANOUT_BUDGET))


class Presence:
    """Counts of this process's sockets per scope, mirrored to Redis; snapshots pushed on change."""

    def __init__(self, hub: Any, redis: Any | None, grace: float, lease: float, namespace: str = "parley") -> None:
        self.hub = hub
        self.redis = redis
        # Keys and the doorbell channel live under the deployment's namespace (see broker.Broker).
        self.procs_key = f"{namespace}:pr:procs"
        self.channel = f"{namespace}:presence"  # the broker's presence_channel; the hub routes it here
        self.key_prefix = f"{namespace}:pr:"
        self.grace = grace
        self.lease = lease
        self.proc = uuid.uuid4().hex[:12]
        self.local: dict[Scope, Local] = {}
        self.views: dict[Scope, ScopeView] = {}
        self.to_flush: set[Scope] = set()
        self.flush_handle: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        # The doorbell goes the way the broker listens: PUBLISH, or SPUBLISH when pub/sub is sharded.
        self.publish_cmd: str = getattr(getattr(hub, "broker", None), "cmd_pub", "PUBLISH")
        self.live_procs: set[str] = set()  # other processes seen alive (to notice one dying)
        self.flushing: asyncio.Task[None] | None = None
        self.stopped = False
        # Counted for the cost model (docs/presence.md).
        self.redis_commands = 0
        self.snapshots = 0
        self.frames_sent = 0

    def _key(self, proc: str, scope: Scope) -> str:
        return f"{self.key_prefix}{proc}:{scope}"

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        self._spawn(self._heartbeat(), "presence-heartbeat")
        self._spawn(self._sweep(), "presence-linger")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        """Graceful: remove our entries at once and tell the others."""
        self.stopped = True
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        for view in self.views.values():
            if view.timer is not None:
                view.timer.cancel()
        flushing = self.flushing
        for t in list(self.tasks):
            if t is not flushing:
                t.cancel()
        if self.redis is None:
            return
        if flushing is not None:  # let a write in flight land first, so our DELs come after it
            await asyncio.wait([flushing], timeout=2)
        scopes = {str(s) for s in self.local} | {"site"}
        try:
            pipe = self.redis.pipeline(transaction=False)
            for s in self.local:
                pipe.delete(self._key(self.proc, s))
            pipe.zrem(self.procs_key, self.proc)
            pipe.execute_command(self.publish_cmd, self.channel, wire.encode(sorted(scopes)))
            await asyncio.wait_for(pipe.execute(), 2)
        except Exception as exc:
            log.warning("could not remove presence entries on shutdown: %s", exc)

    # -- local changes ---------------------------------------------------

    def _loc(self, scope: Scope) -> Local:
        loc = self.local.get(scope)
        if loc is None:
            loc = self.local[scope] = Local()
        return loc

    def add(self, scope: Scope, user: Brief | None) -> None:
        """A socket of `user` (None: a guest) joined `scope`."""
        loc = self._loc(scope)
        if user is None:
            loc.guests += 1
            loc.guests_changed = True
            self._changed(scope)
            return
        uid = user["id"]
        n = loc.users.get(uid, 0)
        loc.users[uid] = n + 1
        if loc.linger.pop(uid, None) is not None:
            return  # back within the grace period: nothing changed for anyone
        if n == 0 and uid not in loc.briefs:
            loc.briefs[uid] = user
            loc.changed.add(uid)
            self._changed(scope)

    def remove(self, scope: Scope, user: Brief | None, linger: bool = True) -> None:
        """A socket of `user` left `scope`; with linger, the user stays listed for the grace period."""
        loc = self.local.get(scope)
        if loc is None:
            return
        if user is None:
            if loc.guests > 0:
                loc.guests -= 1
                loc.guests_changed = True
                self._changed(scope)
            return
        uid = user["id"]
        n = loc.users.get(uid, 0) - 1
        if n > 0:
            loc.users[uid] = n
            return
        if loc.users.pop(uid, None) is None:
            return  # not one of ours (already removed)
        if uid in loc.briefs:
            if linger and self.grace > 0:
                loc.linger[uid] = time.monotonic() + self.grace
            else:
                self._expire(scope, loc, uid)

    def _expire(self, scope: Scope, loc: Local, uid: int) -> None:
        loc.linger.pop(uid, None)
        if uid not in loc.users and loc.briefs.pop(uid, None) is not None:
            loc.changed.add(uid)
            self._changed(scope)

    def connect(self, conn: Conn) -> None:
        self.add("site", conn.user)

    def disconnect(self, conn: Conn, linger: bool = True) -> None:
        self.remove("site", conn.user, linger=linger)

    def _changed(self, scope: Scope) -> None:
        view = self.views.get(scope)
        if view is not None:
            view.frame = None
        if self.redis is None:
            self._mark_dirty(scope)
            return
        self._queue_flush(scope, FLUSH)

    def _queue_flush(self, scope: Scope, delay: float) -> None:
        self.to_flush.add(scope)
        if self.flush_handle is None and not self.stopped:
            self.flush_handle = asyncio.get_running_loop().call_later(delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self.flush_handle = None
        if self.flushing is not None:  # one write at a time, in order: try again when it is done
            self.flush_handle = asyncio.get_running_loop().call_later(FLUSH, self._flush_soon)
            return
        self.flushing = asyncio.get_running_loop().create_task(self._flush(), name="presence-flush")
        self.tasks.add(self.flushing)
        self.flushing.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.flushing = None

    async def _flush(self) -> None:
        """Write what changed since the last flush in one pipeline, then ring the doorbell once."""
        scopes, self.to_flush = self.to_flush, set()
        if not scopes or self.redis is None or self.stopped:
            return
        ttl = int(self.lease * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.procs_key, {self.proc: time.time() + self.lease})
        written: list[Local] = []
        for s in scopes:
            loc = self.local.get(s)
            self._write_scope(pipe, s, loc, ttl)
            if loc is not None:
                written.append(loc)
        pipe.execute_command(self.publish_cmd, self.channel, wire.encode([str(s) for s in scopes]))
        self.redis_commands += len(pipe)
        try:
            await pipe.execute()
        except Exception as exc:  # Redis down: write these scopes whole, a little later
            log.warning("presence flush failed: %s", exc)
            for loc in written:
                loc.rewrite = True
            for s in scopes:
                self._queue_flush(s, RETRY)
                self._mark_dirty(s)

    def _write_scope(self, pipe: Any, scope: Scope, loc: Local | None, ttl: int) -> None:
        key = self._key(self.proc, scope)
        if loc is None or loc.empty():
            pipe.delete(key)
            if loc is not None:
                loc.changed.clear()
                loc.guests_changed = False
                loc.rewrite = True  # the next write starts a fresh hash
            return
        if loc.rewrite:
            pipe.delete(key)
            fields: dict[str, bytes | int] = {str(uid): wire.encode(b) for uid, b in loc.briefs.items()}
        else:
            fields = {str(uid): wire.encode(loc.briefs[uid]) for uid in loc.changed if uid in loc.briefs}
            gone = [str(uid) for uid in loc.changed if uid not in loc.briefs]
            if gone:
                pipe.hdel(key, *gone)
        if loc.rewrite or loc.guests_changed:
            fields["g"] = loc.guests
        if fields:
            pipe.hset(key, mapping=fields)
        pipe.pexpire(key, ttl)
        loc.changed.clear()
        loc.guests_changed = False
        loc.rewrite = False

    def _watched(self, scope: Scope) -> bool:
        return scope == "site" or bool(self.hub.watching(scope))

    # -- snapshots -------------------------------------------------------

    def on_message(self, message: bytes) -> None:
        """The doorbell: another (or this) process changed these scopes."""
        try:
            scopes = wire.decode(message)
        except Exception:
            return
        for s in scopes:
            try:
                scope: Scope = "site" if s == "site" else int(s)
            except (TypeError, ValueError):
                continue
            if self._watched(scope):
                self._mark_dirty(scope)
            elif (view := self.views.get(scope)) is not None:
                view.parts = None  # nobody here watches it: read it afresh when someone does

    def on_reconnect(self) -> None:
        """Redis may have restarted and forgotten us: write everything again, recompute everything."""
        if self.redis is not None:
            for s, loc in self.local.items():
                loc.rewrite = True
                self._queue_flush(s, FLUSH)
        self._mark_all_dirty()

    def _mark_all_dirty(self) -> None:
        self._mark_dirty("site")
        for s in list(self.views):
            if isinstance(s, int) and self.hub.watching(s):
                self._mark_dirty(s)

    def _view(self, scope: Scope) -> ScopeView:
        view = self.views.get(scope)
        if view is None:
            view = self.views[scope] = ScopeView()
        return view

    def _mark_dirty(self, scope: Scope) -> None:
        if self.stopped:
            return
        view = self._view(scope)
        view.dirty = True
        if view.timer is None and not view.running:
            delay = max(0.0, view.ran_at + view.interval - time.monotonic())
            view.timer = asyncio.get_running_loop().call_later(delay, self._publish_soon, scope)

    def _publish_soon(self, scope: Scope) -> None:
        view = self.views.get(scope)
        if view is None:
            return
        view.timer = None
        view.running = True
        self._spawn(self._publish(scope, view), "presence-snapshot")

    async def _publish(self, scope: Scope, view: ScopeView) -> None:
        """Recompute one scope (one per interval, never two at once) and push it if it changed."""
        try:
            view.dirty = False
            view.ran_at = time.monotonic()
            try:
                await self._refresh(scope, view)
            except Exception as exc:
                log.warning("presence snapshot of %s failed: %s", scope, exc)
            users, guests = self._compose(scope, view)
            key = _snapshot_key(users, guests)
            joined, view.joined = view.joined, {}
            if view.frame is None or view.frame_key != key:
                view.frame, view.frame_key = self._encode(scope, users, guests), key
            frame = view.frame
            if key == view.sent_key:
                # Nothing changed since the last broadcast, but a socket that joined in between may have
                # been told of a state that has since been undone: correct just those.
                for conn, told in joined.items():
                    if told != key and conn.alive and (scope == "site" or scope in conn.rooms):
                        conn.send(frame)
                        self.frames_sent += 1
                return
            view.sent_key = key
            conns = list(self.hub.conns) if scope == "site" else self.hub.watching(scope)
            if scope == "site":
                metrics.PRESENCE_USERS.set(len(users))
                metrics.PRESENCE_GUESTS.set(guests)
            sent = 0
            for conn in conns:
                if joined and joined.get(conn) == key:
                    continue
                conn.send(frame)
                sent += 1
            self.frames_sent += sent
            view.interval = _interval(len(frame.json), sent)
        finally:
            view.running = False
            if view.dirty:  # changed again while we read: go again after the interval
                view.dirty = False
                self._mark_dirty(scope)

    async def _refresh(self, scope: Scope, view: ScopeView) -> None:
        """Read the other processes' entries for a scope from Redis."""
        view.frame = None
        if self.redis is None:
            view.parts = {}
            return
        self.snapshots += 1
        procs = await self.redis.zrangebyscore(self.procs_key, time.time(), "+inf")
        others = [p.decode() for p in procs if p.decode() != self.proc]
        self.live_procs.update(others)
        self.redis_commands += 1 + len(others)
        results: list[Any] = []
        if others:
            pipe = self.redis.pipeline(transaction=False)
            for p in others:
                pipe.hgetall(self._key(p, scope))
            results = await pipe.execute()
        parts: dict[str, tuple[dict[int, Brief], int]] = {}
        for p, h in zip(others, results, strict=True):
            if h:
                users = {int(k): wire.decode(v) for k, v in h.items() if k != b"g"}
                parts[p] = (users, int(h.get(b"g", 0)))
        view.parts = parts
        view.frame = None

    def _compose(self, scope: Scope, view: ScopeView) -> tuple[list[Brief], int]:
        users: dict[int, Brief] = {}
        guests = 0
        for p_users, p_guests in (view.parts or {}).values():
            users.update(p_users)
            guests += p_guests
        loc = self.local.get(scope)
        if loc is not None:
            users.update(loc.briefs)
            guests += loc.guests
        ordered = sorted(users.values(), key=lambda u: (u["display_name"].lower(), u["id"]))
        return ordered, guests

    @staticmethod
    def _encode(scope: Scope, users: list[Brief], guests: int) -> Frame:
        return Frame(wire.presence(users, guests, None if scope == "site" else int(scope)))

    async def _ensure_parts(self, scope: Scope, view: ScopeView, fresh: bool) -> None:
        # A watched scope's parts are kept current by the doorbell and the heartbeat; any other is read now.
        if view.parts is None or fresh or not self._watched(scope):
            async with view.lock:
                if view.parts is None or fresh or not self._watched(scope):
                    try:
                        await self._refresh(scope, view)
                    except Exception as exc:
                        log.warning("presence read failed: %s", exc)
                        view.parts = view.parts or {}

    async def snapshot(self, scope: Scope, fresh: bool = False) -> tuple[list[Brief], int]:
        """(users, guests) now: other processes as last read (or read now), this one live."""
        view = self._view(scope)
        await self._ensure_parts(scope, view, fresh)
        return self._compose(scope, view)

    async def frame(self, scope: Scope, conn: Conn | None = None) -> Frame:
        """The scope's snapshot frame for a socket that just joined (encoded once until something changes)."""
        view = self._view(scope)
        await self._ensure_parts(scope, view, False)
        if view.frame is None or view.frame_key is None:
            users, guests = self._compose(scope, view)
            view.frame, view.frame_key = self._encode(scope, users, guests), _snapshot_key(users, guests)
        if conn is not None:
            view.joined[conn] = view.frame_key
        return view.frame

    # -- background ------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Renew our lease (with jitter, so processes do not beat in step) and notice dead processes."""
        while True:
            await asyncio.sleep(self.lease / 4 * (0.8 + 0.4 * random.random()))
            if self.redis is None:
                continue
            now = time.time()
            ttl = int(self.lease * 1000)
            scopes = [s for s, loc in self.local.items() if not loc.empty() and not loc.rewrite]
            try:
                pipe = self.redis.pipeline(transaction=False)
                pipe.zadd(self.procs_key, {self.proc: now + self.lease})
                pipe.zremrangebyscore(self.procs_key, "-inf", now - 60)
                pipe.zrangebyscore(self.procs_key, now, "+inf", withscores=True)
                for s in scopes:
                    pipe.pexpire(self._key(self.proc, s), ttl)
                self.redis_commands += len(pipe)
                results = await pipe.execute()
            except Exception as exc:
                log.warning("presence heartbeat failed: %s", exc)
                self._mark_dirty("site")
                continue
            for s, renewed in zip(scopes, results[3:], strict=True):
                if not renewed and s in self.local:  # the key is gone (Redis restarted?): write it whole
                    self.local[s].rewrite = True
                    self._queue_flush(s, FLUSH)
            live = {p.decode() for p, _ in results[2]} - {self.proc}
            # A lease running out before our next beat is most likely a dead process: look again right
            # when it ends rather than up to a beat later (if it renews meanwhile, nothing changes).
            for p, expiry in results[2]:
                if p.decode() != self.proc and expiry - now < self.lease / 4 * 1.2 + 1:
                    asyncio.get_running_loop().call_later(max(0.0, expiry - time.time()) + 0.05,
                                                          self._mark_all_dirty)
            # A process that died rings no doorbell: when one leaves the live set, recompute every scope.
            if self.live_procs - live:
                self._mark_all_dirty()
            else:
                self._mark_dirty("site")  # cheap safety net for a doorbell lost without a reconnect
            self.live_procs = live

    async def _sweep(self) -> None:
        """End grace periods, and forget scopes nobody here watches any more."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for scope, loc in list(self.local.items()):
                for uid, until in list(loc.linger.items()):
                    if until <= now:
                        self._expire(scope, loc, uid)
                if (isinstance(scope, int) and loc.empty() and scope not in self.to_flush
                        and not self.hub.watching(scope)):
                    del self.local[scope]
            for scope, view in list(self.views.items()):
                if (isinstance(scope, int) and scope not in self.local and not view.running
                        and view.timer is None and not self.hub.watching(scope)):
                    del self.views[scope]
