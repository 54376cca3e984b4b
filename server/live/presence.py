"""Active Now and thread watchers: soft state with leases (docs/presence.md).

Each process owns the counts of its own sockets, per scope ("site" or a
thread id), and mirrors who is present in Redis as one hash per scope:
  parley:pr:{proc}:{scope}   field user_id → User brief JSON, field "g" → guest sockets
  parley:pr:procs            sorted set: proc → lease expiry (unix time)
Every key carries the lease as its TTL and is renewed on a jittered
heartbeat; a process that dies stops renewing and its entries expire. A
graceful shutdown deletes them at once.

A change is written in a batch (at most every FLUSH seconds) followed by one
PUBLISH on parley:presence naming the scopes; each process then recomputes
those snapshots at most once a second per scope and sends a frame to its
local sockets only if the snapshot changed. A user whose last socket closes
lingers for the grace period, so a reload or a brief drop shows nothing.

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
FLUSH = 0.1        # seconds: batch local changes into one Redis pipeline
COALESCE = 1.0     # seconds: at most one snapshot frame per scope per this interval


class Local:
    """This process's sockets in one scope."""

    __slots__ = ("users", "briefs", "guests", "linger")

    def __init__(self) -> None:
        self.users: dict[int, int] = {}              # user id → open sockets here
        self.briefs: dict[int, dict[str, Any]] = {}  # user id → brief, while present or lingering
        self.guests = 0
        self.linger: dict[int, float] = {}           # user id → when the grace period ends

    def present(self) -> dict[int, dict[str, Any]]:
        return self.briefs

    def empty(self) -> bool:
        return not self.briefs and not self.guests


class ScopeView:
    """What this process last computed for a scope, and when it last sent it."""

    __slots__ = ("parts", "sent_key", "sent_at", "dirty", "timer", "lock")

    def __init__(self) -> None:
        self.parts: dict[str, tuple[dict[int, dict[str, Any]], int]] | None = None  # other procs' entries
        self.sent_key: tuple[tuple[int, ...], int] | None = None
        self.sent_at = 0.0
        self.dirty = False
        self.timer: asyncio.TimerHandle | None = None
        self.lock = asyncio.Lock()


def _key(proc: str, scope: Scope) -> str:
    return f"parley:pr:{proc}:{scope}"


class Presence:
    def __init__(self, hub: Any, redis: Any | None, grace: float, lease: float) -> None:
        self.hub = hub
        self.redis = redis
        self.grace = grace
        self.lease = lease
        self.proc = uuid.uuid4().hex[:12]
        self.local: dict[Scope, Local] = {}
        self.views: dict[Scope, ScopeView] = {}
        self.to_flush: set[Scope] = set()
        self.flush_handle: asyncio.TimerHandle | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.redis_commands = 0  # counted for the cost model (docs/presence.md)

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        self.tasks.append(asyncio.create_task(self._heartbeat(), name="presence-heartbeat"))
        self.tasks.append(asyncio.create_task(self._sweep(), name="presence-linger"))

    async def stop(self) -> None:
        """Graceful: remove our entries at once and tell the others."""
        for t in self.tasks:
            t.cancel()
        if self.redis is None:
            return
        scopes = [s for s, loc in self.local.items() if not loc.empty()] + ["site"]
        try:
            pipe = self.redis.pipeline(transaction=False)
            for s in self.local:
                pipe.delete(_key(self.proc, s))
            pipe.zrem("parley:pr:procs", self.proc)
            pipe.publish("parley:presence", wire.encode([str(s) for s in set(scopes)]))
            await asyncio.wait_for(pipe.execute(), 2)
        except Exception as exc:
            log.warning("could not remove presence entries on shutdown: %s", exc)

    # -- local changes ---------------------------------------------------

    def _loc(self, scope: Scope) -> Local:
        loc = self.local.get(scope)
        if loc is None:
            loc = self.local[scope] = Local()
        return loc

    def add(self, scope: Scope, user: dict[str, Any] | None) -> None:
        loc = self._loc(scope)
        if user is None:
            loc.guests += 1
            self._changed(scope)
            return
        uid = user["id"]
        n = loc.users.get(uid, 0)
        loc.users[uid] = n + 1
        if loc.linger.pop(uid, None) is not None:
            return  # back within the grace period: nothing changed for anyone
        if n == 0:
            loc.briefs[uid] = user
            self._changed(scope)

    def remove(self, scope: Scope, user: dict[str, Any] | None) -> None:
        loc = self.local.get(scope)
        if loc is None:
            return
        if user is None:
            loc.guests = max(0, loc.guests - 1)
            self._changed(scope)
            return
        uid = user["id"]
        n = loc.users.get(uid, 0) - 1
        if n > 0:
            loc.users[uid] = n
            return
        loc.users.pop(uid, None)
        if uid in loc.briefs:
            loc.linger[uid] = time.monotonic() + self.grace
            if self.grace <= 0:
                self._expire(scope, loc, uid)

    def _expire(self, scope: Scope, loc: Local, uid: int) -> None:
        loc.linger.pop(uid, None)
        if uid not in loc.users:
            loc.briefs.pop(uid, None)
            self._changed(scope)

    def connect(self, conn: Conn) -> None:
        self.add("site", conn.user)

    def disconnect(self, conn: Conn) -> None:
        self.remove("site", conn.user)

    def _changed(self, scope: Scope) -> None:
        if self.redis is None:
            self._mark_dirty(scope)
            return
        self.to_flush.add(scope)
        if self.flush_handle is None:
            self.flush_handle = asyncio.get_running_loop().call_later(FLUSH, self._flush_soon)

    def _flush_soon(self) -> None:
        self.flush_handle = None
        asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        scopes, self.to_flush = self.to_flush, set()
        if not scopes or self.redis is None:
            return
        ttl = int(self.lease * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd("parley:pr:procs", {self.proc: time.time() + self.lease})
        for s in scopes:
            self._write_scope(pipe, s, ttl)
        pipe.publish("parley:presence", wire.encode([str(s) for s in scopes]))
        try:
            self.redis_commands += len(pipe.command_stack)
            await pipe.execute()
        except Exception as exc:  # Redis down: on_reconnect rewrites everything
            log.warning("presence flush failed: %s", exc)
            for s in scopes:
                self._mark_dirty(s)

    def _write_scope(self, pipe: Any, scope: Scope, ttl: int) -> None:
        key = _key(self.proc, scope)
        loc = self.local.get(scope)
        pipe.delete(key)
        if loc is not None and not loc.empty():
            mapping: dict[str, bytes | int] = {str(uid): wire.encode(b) for uid, b in loc.briefs.items()}
            mapping["g"] = loc.guests
            pipe.hset(key, mapping=mapping)
            pipe.pexpire(key, ttl)
        elif loc is not None and not self._watched(scope):
            del self.local[scope]

    def _watched(self, scope: Scope) -> bool:
        return scope == "site" or bool(self.hub.watching(scope)) if isinstance(scope, int) else True

    # -- snapshots -------------------------------------------------------

    def on_message(self, message: bytes) -> None:
        """The doorbell: another (or this) process changed these scopes."""
        try:
            scopes = wire.decode(message)
        except Exception:
            return
        for s in scopes:
            scope: Scope = "site" if s == "site" else int(s)
            if scope == "site" or self.hub.watching(scope):
                self._mark_dirty(scope)

    def on_reconnect(self) -> None:
        """Redis may have restarted and forgotten us: write everything again, recompute everything."""
        if self.redis is not None:
            for s in self.local:
                self._changed(s)
        self._mark_dirty("site")
        for s in list(self.local):
            if isinstance(s, int):
                self._mark_dirty(s)

    def _mark_dirty(self, scope: Scope) -> None:
        view = self.views.get(scope)
        if view is None:
            view = self.views[scope] = ScopeView()
        view.dirty = True
        if view.timer is None:
            delay = max(0.0, view.sent_at + COALESCE - time.monotonic())
            view.timer = asyncio.get_running_loop().call_later(delay, self._publish_soon, scope)

    def _publish_soon(self, scope: Scope) -> None:
        view = self.views[scope]
        view.timer = None
        asyncio.get_running_loop().create_task(self._publish(scope))

    async def _publish(self, scope: Scope) -> None:
        view = self.views[scope]
        if not view.dirty:
            return
        view.dirty = False
        try:
            await self._refresh(scope, view)
        except Exception as exc:
            log.warning("presence snapshot of %s failed: %s", scope, exc)
        users, guests = self._compose(scope, view)
        key = (tuple(sorted(u["id"] for u in users)), guests)
        if key == view.sent_key:
            return
        view.sent_key = key
        view.sent_at = time.monotonic()
        frame = Frame(wire.presence(users, guests, None if scope == "site" else int(scope)))
        if scope == "site":
            metrics.PRESENCE_USERS.set(len(users))
            metrics.PRESENCE_GUESTS.set(guests)
            for conn in list(self.hub.conns):
                conn.send(frame)
        else:
            for conn in self.hub.watching(scope):
                conn.send(frame)

    async def _refresh(self, scope: Scope, view: ScopeView) -> None:
        """Read the other processes' entries for a scope from Redis."""
        if self.redis is None:
            view.parts = {}
            return
        now = time.time()
        procs = await self.redis.zrangebyscore("parley:pr:procs", now, "+inf")
        pipe = self.redis.pipeline(transaction=False)
        others = [p.decode() for p in procs if p.decode() != self.proc]
        for p in others:
            pipe.hgetall(_key(p, scope))
        self.redis_commands += 1 + len(others)
        results = await pipe.execute() if others else []
        parts: dict[str, tuple[dict[int, dict[str, Any]], int]] = {}
        for p, h in zip(others, results, strict=True):
            users = {int(k): wire.decode(v) for k, v in h.items() if k != b"g"}
            parts[p] = (users, int(h.get(b"g", 0)))
        view.parts = parts

    def _compose(self, scope: Scope, view: ScopeView) -> tuple[list[dict[str, Any]], int]:
        users: dict[int, dict[str, Any]] = {}
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

    async def snapshot(self, scope: Scope, fresh: bool = False) -> tuple[list[dict[str, Any]], int]:
        """(users, guests) now: other processes as last read (or read now), this one live."""
        view = self.views.get(scope)
        if view is None:
            view = self.views[scope] = ScopeView()
        if view.parts is None or fresh:
            async with view.lock:
                if view.parts is None or fresh:
                    try:
                        await self._refresh(scope, view)
                    except Exception as exc:
                        log.warning("presence read failed: %s", exc)
                        view.parts = view.parts or {}
        return self._compose(scope, view)

    async def frame(self, scope: Scope) -> Frame:
        users, guests = await self.snapshot(scope)
        return Frame(wire.presence(users, guests, None if scope == "site" else int(scope)))

    # -- background ------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Renew our lease (with jitter, so processes do not beat in step) and notice dead processes."""
        while True:
            await asyncio.sleep(self.lease / 4 * (0.8 + 0.4 * random.random()))
            if self.redis is not None:
                ttl = int(self.lease * 1000)
                try:
                    pipe = self.redis.pipeline(transaction=False)
                    pipe.zadd("parley:pr:procs", {self.proc: time.time() + self.lease})
                    pipe.zremrangebyscore("parley:pr:procs", "-inf", time.time() - 60)
                    for s, loc in self.local.items():
                        if not loc.empty():
                            pipe.pexpire(_key(self.proc, s), ttl)
                    self.redis_commands += len(pipe.command_stack)
                    await pipe.execute()
                except Exception as exc:
                    log.warning("presence heartbeat failed: %s", exc)
            # A process that died does not ring the doorbell: look again.
            self._mark_dirty("site")
            for s in list(self.local):
                if isinstance(s, int) and self.hub.watching(s):
                    self._mark_dirty(s)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for scope, loc in list(self.local.items()):
                for uid, until in list(loc.linger.items()):
                    if until <= now:
                        self._expire(scope, loc, uid)
