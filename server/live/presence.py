"""Active Now and thread watchers: soft state with leases, O(1) per change (docs/presence.md).

Each process owns the counts of its own sockets, per scope ("site" or a
thread id). With Redis, the scope's members live in keys *shared* by all
processes, so no process ever reads another's whole list ({ns} is the
deployment's namespace, parley:<id>, see broker.Broker; {S} is the scope, a
Redis Cluster hash tag, so one scope's keys share a slot and one Lua script
can update them atomically):
  {ns}:pr:{S}:t         sorted set  user id → arrival number (ZREVRANGE 0 49: the frame's top 50; ZCARD: count)
  {ns}:pr:{S}:n         sorted set  "lowercased display name\\0user id" scored 0 (ZRANGEBYLEX: paging by name)
  {ns}:pr:{S}:b / :m    hashes      user id → User brief JSON / → its :n member
  {ns}:pr:{S}:r         hash        user id → how many processes hold the user (reference count)
  {ns}:pr:{S}:q         counter     arrival numbers (INCR: a total order, no clocks compared)
  {ns}:pr:{S}:g         hash        proc → guest sockets there
  {ns}:pr:{S}:h:{proc}  set         the users this process holds in the scope (makes every write idempotent)
  {ns}:pr:s:{proc}      set         the scopes this process holds (what to clean up when it dies)
  {ns}:pr:procs         sorted set  proc → lease expiry (unix time)
A user enters :t when the first process takes them (reference 0 → 1) and
leaves it when the last lets go (1 → 0); a second tab, a second process or a
reload within the grace period changes nothing shared. Shared keys carry
2 leases as TTL and held sets 4, renewed on a jittered heartbeat. A process
whose lease ran out is reaped by any survivor: one script per scope gives
back its references (O(its users), once). A graceful shutdown reaps itself.

A change is written in a batch (at most every FLUSH seconds): one EVALSHA per
changed scope, then, once that pipeline has executed, one broker.publish on
the presence channel naming the scopes (the doorbell, channels.py; never inside the pipeline: on a
cluster its writes land on several nodes and must all be in first). Each
process then re-reads those scopes at most once per COALESCE seconds per
scope, a bounded read (top 50, ZCARD, guests per process), and sends a frame
to its local sockets only if what it shows changed: one encode per scope, the
same bytes to every socket. A user whose last socket closes lingers for the
grace period, so a reload or a brief drop shows nothing; an explicit
unsubscribe leaves the thread at once.

Without Redis the same class runs with no store: the local state is the
whole truth (one process).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hashlib
import itertools
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from .. import metrics, wire
from .channels import Channels, doorbell, parse_doorbell
from .conn import Conn, Frame

if TYPE_CHECKING:
    from .broker import Broker

log = logging.getLogger(__name__)

Scope = str | int  # "site" or a thread id
Brief = dict[str, Any]
TOP = 50                     # users in a frame: the most recently arrived (CONTRACT rev. 2)
PAGE_DEFAULT, PAGE_MAX = 50, 200
FLUSH = 0.1                  # seconds: batch local changes into one Redis pipeline
COALESCE = 1.0               # seconds: at most one recompute (and frame) per scope per this interval...
MAX_COALESCE = 10.0          # ...stretched up to this for huge fan-outs; 15 s grace + 10 s stays within 30 s
FANOUT_BUDGET = 16 << 20     # bytes/s of presence frames one scope may write to this process's sockets
FANOUT_SENDS = 8_000         # ...and sends/s: each is a write() of its own, which costs more than the bytes
RETRY = 1.0                  # seconds before a failed flush is tried again
SWEEP = 0.5                  # seconds between grace-period checks

# KEYS of every per-scope script, in this order (see _keys): held r t n b m q g
_DROP = """
local function drop(uid)
  redis.call('HDEL', KEYS[2], uid)
  redis.call('ZREM', KEYS[3], uid)
  local member = redis.call('HGET', KEYS[6], uid)
  if member then redis.call('ZREM', KEYS[4], member) end
  redis.call('HDEL', KEYS[6], uid)
  redis.call('HDEL', KEYS[5], uid)
  return 1
end
"""
# ARGV: proc, shared ttl ms, held ttl ms, guests here (-1: unchanged), then (op, uid, member, brief)…
# An op is idempotent: a join the held set already has, or a leave it does not, changes nothing, so a
# retried or repeated batch (a failed flush, a Redis that restarted empty) is always safe.
APPLY = _DROP + """
local changed = 0
local i = 5
while i <= #ARGV do
  local uid = ARGV[i + 1]
  if ARGV[i] == 'j' then
    if redis.call('SADD', KEYS[1], uid) == 1 and redis.call('HINCRBY', KEYS[2], uid, 1) == 1 then
      redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[7]), uid)
      redis.call('ZADD', KEYS[4], 0, ARGV[i + 2])
      redis.call('HSET', KEYS[6], uid, ARGV[i + 2])
      redis.call('HSET', KEYS[5], uid, ARGV[i + 3])
      changed = changed + 1
    end
  elseif redis.call('SREM', KEYS[1], uid) == 1 and redis.call('HINCRBY', KEYS[2], uid, -1) <= 0 then
    changed = changed + drop(uid)
  end
  i = i + 4
end
local g = tonumber(ARGV[4])
if g >= 0 then
  local old = tonumber(redis.call('HGET', KEYS[8], ARGV[1]) or '0')
  if g > 0 then redis.call('HSET', KEYS[8], ARGV[1], g) else redis.call('HDEL', KEYS[8], ARGV[1]) end
  if old ~= g then changed = changed + 1 end
end
for k = 2, 8 do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return changed
"""
# A dead (or stopping) process's share of a scope, given back. ARGV: proc.
REAP = _DROP + """
local changed = 0
for _, uid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HINCRBY', KEYS[2], uid, -1) <= 0 then changed = changed + drop(uid) end
end
redis.call('DEL', KEYS[1])
changed = changed + redis.call('HDEL', KEYS[8], ARGV[1])
return changed
"""
# The heartbeat. ARGV: shared ttl, held ttl, users held here (0/1), guests here, proc → 0 if Redis lost our part.
RENEW = """
for k = 2, 8 do redis.call('PEXPIRE', KEYS[k], ARGV[1]) end
local ok = 1
if ARGV[3] == '1' and redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 0 then ok = 0 end
if tonumber(ARGV[4]) > 0 and redis.call('HEXISTS', KEYS[8], ARGV[5]) == 0 then ok = 0 end
return ok
"""
# What a frame shows: bounded, whatever the crowd. ARGV: TOP, proc → {count, guests, our guests, briefs…}
VIEW = """
local ids = redis.call('ZREVRANGE', KEYS[3], 0, tonumber(ARGV[1]) - 1)
local guests = 0
for _, v in ipairs(redis.call('HVALS', KEYS[8])) do guests = guests + tonumber(v) end
local out = {redis.call('ZCARD', KEYS[3]), guests, tonumber(redis.call('HGET', KEYS[8], ARGV[2]) or '0')}
if #ids > 0 then
  local briefs = redis.call('HMGET', KEYS[5], unpack(ids))
  for i = 1, #ids do out[#out + 1] = briefs[i] or '' end
end
return out
"""
# One page by display name. ARGV: after (a :n member, '' for the start), limit → {count, guests, more, briefs…}
PAGE = """
local low = '-'
if ARGV[1] ~= '' then low = '(' .. ARGV[1] end
local limit = tonumber(ARGV[2])
local members = redis.call('ZRANGEBYLEX', KEYS[4], low, '+', 'LIMIT', 0, limit + 1)
local more = 0
if #members > limit then more = 1; members[#members] = nil end
local guests = 0
for _, v in ipairs(redis.call('HVALS', KEYS[8])) do guests = guests + tonumber(v) end
local out = {redis.call('ZCARD', KEYS[3]), guests, more}
if #members > 0 then
  local uids = {}
  for i, m in ipairs(members) do uids[i] = tostring(tonumber(string.sub(m, -20))) end
  local briefs = redis.call('HMGET', KEYS[5], unpack(uids))
  for i = 1, #members do out[#out + 1] = members[i]; out[#out + 1] = briefs[i] or '' end
end
return out
"""
SCRIPTS = {"apply": APPLY, "reap": REAP, "renew": RENEW, "view": VIEW, "page": PAGE}
SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}


def name_key(user: Brief) -> str:
    """The paging order: lowercased display name, then user id (zero-padded, so ids sort as numbers)."""
    return f"{user['display_name'].lower()}\0{user['id']:020d}"


def encode_cursor(member: str) -> str:
    return base64.urlsafe_b64encode(member.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The :n member a `next` cursor names; ValueError if it is not one of ours."""
    member = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    name, sep, uid = member.rpartition("\0")
    if not sep or len(uid) != 20 or not uid.isdigit():
        raise ValueError("not a presence cursor")
    return member


class Local:
    """This process's sockets in one scope, and what of it Redis has not heard yet."""

    __slots__ = ("users", "briefs", "guests", "linger", "changed", "guests_changed", "rewrite", "pending", "names")

    def __init__(self) -> None:
        self.users: dict[int, int] = {}     # user id → open sockets here
        self.briefs: dict[int, Brief] = {}  # user id → brief, while present or lingering; in order of arrival
        self.guests = 0
        self.linger: dict[int, float] = {}  # user id → when the grace period ends (clock time)
        self.changed: dict[int, None] = {}  # user ids to write at the next flush, in order of change
        self.guests_changed = False
        self.rewrite = True                 # write everything (first write, or Redis lost it)
        # Users who arrived here and are not yet in what this process last read from Redis: shown first
        # (they are the newest) until a read issued after their write. uid → the flush generation that
        # wrote them (inf: not written yet).
        self.pending: dict[int, float] = {}
        self.names: list[str] = []          # sorted name keys, for paging without Redis

    def empty(self) -> bool:
        return not self.briefs and not self.guests


class ScopeView:
    """What this process last read (or computed) for a scope, and when."""

    __slots__ = ("top", "count", "guests", "mine", "sent_key", "ran_at", "interval", "dirty", "timer",
                 "running", "lock", "frame", "frame_key", "joined", "welcomed")

    def __init__(self) -> None:
        self.top: list[Brief] | None = None  # from Redis: at most TOP users, newest first; None: not read
        self.count = 0                       # distinct users present, all processes (ZCARD)
        self.guests = 0                      # guest sockets, all processes
        self.mine = 0                        # our own guests as Redis had them at that read
        self.sent_key: Key | None = None
        self.ran_at = -COALESCE   # clock time of the last recompute
        self.interval = COALESCE
        self.dirty = False
        self.timer: asyncio.TimerHandle | None = None
        self.running = False
        self.lock = asyncio.Lock()
        self.frame: Frame | None = None  # the current frame, encoded; None when something changed
        self.frame_key: Key | None = None
        # Sockets that got a frame on joining since the last broadcast, with what it said: the
        # broadcast skips them when it says the same (else every joiner would get its own join twice).
        self.joined: dict[Conn, Key] = {}
        # Sockets that have had their join frame: a broadcast goes only to these, so a socket never hears
        # of a scope before its hello or `subscribed` + join frame (ws.py awaits in between).
        self.welcomed: set[Conn] = set()


Key = tuple[tuple[int, ...], int, int]  # what a frame shows: user ids in order, count, guests


def _interval(frame_bytes: int, sockets: int, base: float = COALESCE) -> float:
    """Coalescing interval for a scope: 1 s, or longer when one broadcast a second would exceed the byte
    or the send budget, never above MAX_COALESCE.

    Frames are bounded (≤ TOP briefs, ~4 KB), so bytes stretch it past ~4,000 sockets of one scope on one
    process. Sends stretch it past FANOUT_SENDS sockets whatever the frame's size: while thousands connect
    at once, every second's frame to every socket of the room made presence the largest cost of the
    storm, and a longer one made the storm longer still (bench/README.md, "growth").
    """
    return min(MAX_COALESCE, max(base, frame_bytes * sockets / FANOUT_BUDGET, sockets / FANOUT_SENDS))


class Presence:
    """Counts of this process's sockets per scope, shared through Redis; bounded frames pushed on change."""

    def __init__(self, hub: Any, redis: Any | None, grace: float, lease: float, namespace: str = "parley",
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 coalesce: float = COALESCE, flush: float = FLUSH, broker: Broker | None = None) -> None:
        self.hub = hub
        self.redis = redis
        # The doorbell goes through the broker, after the pipeline it announces has executed: on a cluster
        # the pipeline's writes land on several nodes, and nobody may read them before they all have.
        self.broker = broker
        # Time is a parameter (STYLE 17): `clock` for grace and coalescing, `wall` for leases shared
        # between processes; the flush and coalescing intervals too, so unit tests run in milliseconds.
        self.clock = clock
        self.wall = wall
        self.coalesce = coalesce
        self.flush_every = flush
        # Keys and the doorbell channel live under the deployment's namespace (see broker.Broker).
        self.ns = namespace
        self.procs_key = f"{namespace}:pr:procs"
        self.channel = Channels(namespace).presence  # the hub routes it here
        self.grace = grace
        self.lease = lease
        self.proc = uuid.uuid4().hex[:12]
        self.local: dict[Scope, Local] = {}
        self.views: dict[Scope, ScopeView] = {}
        self.to_flush: set[Scope] = set()
        self.flush_handle: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.flushing: asyncio.Task[None] | None = None
        self.flush_gen = 0          # successful flushes so far (see Local.pending)
        self.reaping: set[str] = set()
        self.stopped = False
        # Counted for the cost model (docs/presence.md).
        self.redis_commands = 0
        self.snapshots = 0
        self.frames_sent = 0
        self.frame_bytes = 0
        self.cpu = 0.0              # thread CPU seconds spent in presence work (bench)

    def _keys(self, scope: Scope | str, proc: str) -> list[str]:
        base = f"{self.ns}:pr:{{{scope}}}"
        return [f"{base}:h:{proc}", f"{base}:r", f"{base}:t", f"{base}:n", f"{base}:b", f"{base}:m",
                f"{base}:q", f"{base}:g"]

    def _scopes_key(self, proc: str) -> str:
        return f"{self.ns}:pr:s:{proc}"

    def _ttls(self) -> tuple[int, int]:
        return int(self.lease * 2000), int(self.lease * 4000)

    @staticmethod
    def _script(pipe: Any, name: str, keys: list[str], args: list[Any], full: bool = False) -> None:
        if full:  # EVAL loads the script too: after NOSCRIPT (a Redis that restarted, a new cluster node)
            pipe.execute_command("EVAL", SCRIPTS[name], len(keys), *keys, *args)
        else:
            pipe.execute_command("EVALSHA", SHAS[name], len(keys), *keys, *args)

    async def _run(self, build: Callable[[Any, bool], None]) -> list[Any]:
        """Run a pipeline built by build(pipe, full); once more with the scripts' text on NOSCRIPT."""
        assert self.redis is not None
        for full in (False, True):
            pipe = self.redis.pipeline(transaction=False)
            build(pipe, full)
            self.redis_commands += len(pipe)
            try:
                return list(await pipe.execute())
            except Exception as exc:
                if full or not (isinstance(exc, NoScriptError) or "NOSCRIPT" in str(exc)
                                or "No matching script" in str(exc)):
                    raise
        raise AssertionError("unreachable")

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        self._spawn(self._heartbeat(), "presence-heartbeat")
        self._spawn(self._sweep(), "presence-linger")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        """Graceful: give back our references at once and tell the others."""
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
        log.info("presence: %d frames sent (%d bytes), %d Redis commands, %d reads, %.2f s CPU",
                 self.frames_sent, self.frame_bytes, self.redis_commands, self.snapshots, self.cpu)
        if self.redis is None:
            return
        if flushing is not None:  # let a write in flight land first, so our reap comes after it
            await asyncio.wait([flushing], timeout=2)
        try:
            await asyncio.wait_for(self._reap(self.proc, {str(s) for s in self.local} | {"site"}), 2)
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
            loc.changed[uid] = None
            if self.redis is None:
                bisect.insort(loc.names, name_key(user))
            else:
                loc.pending[uid] = float("inf")
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
                loc.linger[uid] = self.clock() + self.grace
            else:
                self._expire(scope, loc, uid)

    def _expire(self, scope: Scope, loc: Local, uid: int) -> None:
        loc.linger.pop(uid, None)
        if uid in loc.users:
            return
        brief = loc.briefs.pop(uid, None)
        if brief is not None:
            loc.pending.pop(uid, None)
            loc.changed.pop(uid, None)
            loc.changed[uid] = None
            if self.redis is None:
                i = bisect.bisect_left(loc.names, name_key(brief))
                if i < len(loc.names) and loc.names[i] == name_key(brief):
                    del loc.names[i]
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
        self._queue_flush(scope, self.flush_every)

    def _queue_flush(self, scope: Scope, delay: float) -> None:
        self.to_flush.add(scope)
        if self.flush_handle is None and not self.stopped:
            self.flush_handle = asyncio.get_running_loop().call_later(delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self.flush_handle = None
        if self.flushing is not None:  # one write at a time, in order: try again when it is done
            self.flush_handle = asyncio.get_running_loop().call_later(self.flush_every, self._flush_soon)
            return
        self.flushing = asyncio.get_running_loop().create_task(self._flush(), name="presence-flush")
        self.tasks.add(self.flushing)
        self.flushing.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.flushing = None

    async def sync(self) -> None:
        """Until what this process changed so far is in Redis (read-your-writes for HTTP): at most a flush or two."""
        for _ in range(3):
            if self.flushing is not None:
                await asyncio.wait([self.flushing], timeout=5)
            elif self.to_flush and not self.stopped:
                if self.flush_handle is not None:
                    self.flush_handle.cancel()
                    self.flush_handle = None
                self._flush_soon()
            else:
                return

    async def _flush(self) -> None:
        """Write what changed since the last flush: one script per scope, then ring the doorbell once."""
        started = time.thread_time()
        scopes, self.to_flush = self.to_flush, set()
        if not scopes or self.redis is None or self.stopped:
            return
        shared_ttl, held_ttl = self._ttls()
        batches: list[tuple[Scope, Local, list[int], bool, bool, list[Any]]] = []
        for s in scopes:
            loc = self.local.get(s)
            if loc is None:
                continue
            rewrite = loc.rewrite
            uids = list(loc.briefs) + [u for u in loc.changed if u not in loc.briefs] if rewrite else list(loc.changed)
            guests = loc.guests if (rewrite or loc.guests_changed) else -1
            loc.changed.clear()
            loc.rewrite = loc.guests_changed = False
            if not uids and guests < 0:
                continue
            args: list[Any] = [self.proc, shared_ttl, held_ttl, guests]
            for uid in uids:
                brief = loc.briefs.get(uid)
                if brief is None:
                    args += ("l", uid, "", "")
                else:
                    args += ("j", uid, name_key(brief), wire.encode(brief))
            batches.append((s, loc, uids, guests >= 0, rewrite, args))
        if not batches:
            return

        def build(pipe: Any, full: bool) -> None:
            pipe.zadd(self.procs_key, {self.proc: self.wall() + self.lease})
            pipe.sadd(self._scopes_key(self.proc), *(str(b[0]) for b in batches))
            pipe.pexpire(self._scopes_key(self.proc), held_ttl)
            for s, loc, _, _, _, args in batches:
                self._script(pipe, "apply", self._keys(s, self.proc), args, full)
                if loc.empty():  # nothing of ours left there: nothing to reap there if we die
                    pipe.srem(self._scopes_key(self.proc), str(s))

        self.cpu += time.thread_time() - started
        try:
            await self._run(build)
            await self._ring([str(b[0]) for b in batches])
        except Exception as exc:  # Redis down: the same ops again, a little later (they are idempotent)
            log.warning("presence flush failed: %s", exc)
            for s, loc, uids, guests, rewrite, _ in batches:
                for uid in uids:
                    loc.changed[uid] = None
                loc.guests_changed |= guests
                loc.rewrite |= rewrite
                self._queue_flush(s, RETRY)
                self._mark_dirty(s)
            return
        self.flush_gen += 1
        for _, loc, uids, _, _, _ in batches:
            for uid in uids:
                if uid in loc.pending:
                    loc.pending[uid] = self.flush_gen

    def _watched(self, scope: Scope) -> bool:
        return scope == "site" or bool(self.hub.watching(scope))

    # -- frames ----------------------------------------------------------

    def on_message(self, message: bytes) -> None:
        """The doorbell: another (or this) process changed these scopes."""
        for scope in parse_doorbell(message):
            if self._watched(scope):
                self._mark_dirty(scope)
            elif (view := self.views.get(scope)) is not None:
                view.top = None  # nobody here watches it: read it afresh when someone does

    def on_reconnect(self) -> None:
        """Redis may have restarted and forgotten us: write everything again, recompute everything."""
        if self.redis is not None:
            for s, loc in self.local.items():
                loc.rewrite = True
                self._queue_flush(s, self.flush_every)
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
            delay = max(0.0, view.ran_at + view.interval - self.clock())
            view.timer = asyncio.get_running_loop().call_later(delay, self._publish_soon, scope)

    def _publish_soon(self, scope: Scope) -> None:
        view = self.views.get(scope)
        if view is None:
            return
        view.timer = None
        view.running = True
        self._spawn(self._publish(scope, view), "presence-snapshot")

    async def _publish(self, scope: Scope, view: ScopeView) -> None:
        """Recompute one scope (one per interval, never two at once) and push it if what it shows changed."""
        try:
            view.dirty = False
            view.ran_at = self.clock()
            try:
                await self._refresh(scope, view)
            except Exception as exc:
                log.warning("presence snapshot of %s failed: %s", scope, exc)
            started = time.thread_time()
            frame, key = self._current(scope, view)
            joined, view.joined = view.joined, {}
            if key == view.sent_key:
                # Nothing changed since the last broadcast, but a socket that joined in between may have
                # been told of a state that has since been undone: correct just those.
                for conn, told in joined.items():
                    if told != key and conn.alive and (scope == "site" or scope in conn.rooms):
                        conn.send(frame)
                        self.frames_sent += 1
                        self.frame_bytes += len(frame.json)
                self.cpu += time.thread_time() - started
                return
            view.sent_key = key
            watchers = self.hub.conns if scope == "site" else self.hub.watching(scope)
            view.welcomed.intersection_update(watchers)  # forget sockets that left
            conns = [c for c in watchers if c in view.welcomed]
            if scope == "site":
                metrics.PRESENCE_USERS.set(key[1])
                metrics.PRESENCE_GUESTS.set(key[2])
            sent = 0
            for conn in conns:
                if joined and joined.get(conn) == key:
                    continue
                conn.send(frame)
                sent += 1
            self.frames_sent += sent
            self.frame_bytes += sent * len(frame.json)
            view.interval = _interval(len(frame.json), sent, self.coalesce)
            self.cpu += time.thread_time() - started
        finally:
            view.running = False
            if view.dirty:  # changed again while we read: go again after the interval
                view.dirty = False
                self._mark_dirty(scope)

    async def _refresh(self, scope: Scope, view: ScopeView) -> None:
        """Read what a frame of this scope shows from Redis: O(TOP) bytes, however many are present."""
        view.frame = None
        if self.redis is None:
            view.top = []
            return
        self.snapshots += 1
        gen = self.flush_gen  # writes that completed before this read is sent are in its answer
        keys = self._keys(scope, self.proc)
        (out,) = await self._run(lambda pipe, full: self._script(pipe, "view", keys, [TOP, self.proc], full))
        started = time.thread_time()
        view.count, view.guests, view.mine = int(out[0]), int(out[1]), int(out[2])
        view.top = [wire.decode(b) for b in out[3:] if b]
        loc = self.local.get(scope)
        if loc is not None and loc.pending:
            for uid in [u for u, g in loc.pending.items() if g <= gen]:
                del loc.pending[uid]
        view.frame = None
        self.cpu += time.thread_time() - started

    def _compose(self, scope: Scope, view: ScopeView) -> tuple[list[Brief], int, int]:
        """(at most TOP users, newest first; count; guests): Redis as last read, with this process live."""
        loc = self.local.get(scope)
        if self.redis is None:
            if loc is None:
                return [], 0, 0
            return [loc.briefs[u] for u in itertools.islice(reversed(loc.briefs), TOP)], len(loc.briefs), loc.guests
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

    def _current(self, scope: Scope, view: ScopeView) -> tuple[Frame, Key]:
        """The scope's frame and what it shows, encoded once until something changes."""
        if view.frame is None or view.frame_key is None:
            users, count, guests = self._compose(scope, view)
            key: Key = (tuple(u["id"] for u in users), count, guests)
            view.frame = Frame(wire.presence(users, guests, None if scope == "site" else int(scope), count))
            view.frame_key = key
        return view.frame, view.frame_key

    async def _ensure_read(self, scope: Scope, view: ScopeView) -> None:
        # A watched scope's view is kept current by the doorbell and the heartbeat; any other is read now.
        if view.top is None or not self._watched(scope):
            async with view.lock:
                if view.top is None or not self._watched(scope):
                    try:
                        await self._refresh(scope, view)
                    except Exception as exc:
                        log.warning("presence read failed: %s", exc)
                        view.top = view.top or []

    async def frame(self, scope: Scope, conn: Conn | None = None) -> Frame:
        """The scope's frame for a socket that just joined (encoded once until something changes)."""
        view = self._view(scope)
        await self._ensure_read(scope, view)
        started = time.thread_time()
        frame, key = self._current(scope, view)
        if conn is not None:
            view.joined[conn] = key
            view.welcomed.add(conn)
        self.cpu += time.thread_time() - started
        return frame

    async def welcome(self, scope: Scope, conn: Conn) -> Frame:
        """A socket joined `scope`: counted in it, and the scope's frame it is greeted with."""
        self.add(scope, conn.user)
        return await self.frame(scope, conn)

    async def snapshot(self, scope: Scope) -> tuple[list[Brief], int, int]:
        """(users as a frame shows them, count, guests) now."""
        view = self._view(scope)
        await self._ensure_read(scope, view)
        return self._compose(scope, view)

    async def page(self, scope: Scope, limit: int = PAGE_DEFAULT, after: str | None = None) -> dict[str, Any]:
        """Everyone present, by display name: {users, count, guests, next} (`after` a decoded cursor member)."""
        limit = max(1, min(PAGE_MAX, limit))
        if self.redis is None:
            loc = self.local.get(scope)
            if loc is None:
                return {"users": [], "count": 0, "guests": 0, "next": None}
            start = bisect.bisect_right(loc.names, after) if after else 0
            members = loc.names[start:start + limit]
            more = start + limit < len(loc.names)
            users = [loc.briefs[int(m[-20:])] for m in members]
            return {"users": users, "count": len(loc.briefs), "guests": loc.guests,
                    "next": encode_cursor(members[-1]) if more and members else None}
        await self.sync()  # this process's own latest changes are in the answer
        keys = self._keys(scope, self.proc)
        try:
            (out,) = await self._run(lambda pipe, full: self._script(pipe, "page", keys, [after or "", limit], full))
        except Exception as exc:  # Redis unreachable: what the frames show (as last read), by name, in one page
            log.warning("presence page read failed: %s", exc)
            users, count, guests = self._compose(scope, self._view(scope))
            return {"users": sorted(users, key=name_key), "count": count, "guests": guests, "next": None}
        members = [m.decode() if isinstance(m, bytes) else m for m in out[3::2]]
        users = [wire.decode(b) for b in out[4::2] if b]
        more = int(out[2]) == 1
        return {"users": users, "count": int(out[0]), "guests": int(out[1]),
                "next": encode_cursor(members[-1]) if more and members else None}

    # -- background ------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Renew our lease (with jitter, so processes do not beat in step) and reap dead processes."""
        while True:
            await asyncio.sleep(self.lease / 4 * (0.8 + 0.4 * random.random()))
            if self.redis is not None:
                await self.beat()

    async def beat(self) -> None:
        """One heartbeat: renew our lease and keys, rewrite what Redis lost, reap processes whose lease ran out."""
        assert self.redis is not None
        now = self.wall()
        shared_ttl, held_ttl = self._ttls()
        scopes = [s for s, loc in self.local.items() if not loc.empty() and not loc.rewrite]

        def build(pipe: Any, full: bool) -> None:
            pipe.zadd(self.procs_key, {self.proc: now + self.lease})
            pipe.pexpire(self._scopes_key(self.proc), held_ttl)
            pipe.zrange(self.procs_key, 0, -1, withscores=True)
            for s in scopes:
                loc = self.local[s]
                self._script(pipe, "renew", self._keys(s, self.proc),
                             [shared_ttl, held_ttl, 1 if loc.briefs else 0, loc.guests, self.proc], full)

        try:
            results = await self._run(build)
        except Exception as exc:
            log.warning("presence heartbeat failed: %s", exc)
            self._mark_dirty("site")
            return
        for s, ok in zip(scopes, results[3:], strict=True):
            if not ok and s in self.local:  # Redis lost our part (restarted?): write it whole
                self.local[s].rewrite = True
                self._queue_flush(s, self.flush_every)
        for p, expiry in results[2]:
            proc = p.decode() if isinstance(p, bytes) else p
            if proc == self.proc:
                continue
            if expiry < now:
                self._spawn(self._reap_dead(proc), "presence-reap")
            elif expiry - now < self.lease / 4 * 1.2 + 1:
                # A lease running out before our next beat is most likely a dead process: look again right
                # when it ends rather than up to a beat later (if it renews meanwhile, nothing happens).
                asyncio.get_running_loop().call_later(max(0.0, expiry - self.wall()) + 0.05, self._check_dead)
        self._mark_dirty("site")  # cheap (a bounded read) safety net for a doorbell lost without a reconnect

    def _check_dead(self) -> None:
        if not self.stopped:
            self._spawn(self._check_dead_now(), "presence-reap")

    async def _check_dead_now(self) -> None:
        assert self.redis is not None
        try:
            dead = await self.redis.zrangebyscore(self.procs_key, "-inf", self.wall())
        except Exception as exc:
            log.warning("presence lease check failed: %s", exc)
            return
        for p in dead:
            proc = p.decode() if isinstance(p, bytes) else p
            if proc != self.proc:
                await self._reap_dead(proc)

    async def _reap_dead(self, proc: str) -> None:
        if proc in self.reaping:
            return
        self.reaping.add(proc)
        try:
            assert self.redis is not None
            scopes = {s.decode() if isinstance(s, bytes) else s
                      for s in await self.redis.smembers(self._scopes_key(proc))}
            await self._reap(proc, scopes)
            log.info("presence: reaped process %s (%d scopes)", proc, len(scopes))
        except Exception as exc:
            log.warning("presence reap of %s failed: %s", proc, exc)
        finally:
            self.reaping.discard(proc)
        self._mark_all_dirty()

    async def _reap(self, proc: str, scopes: set[str]) -> None:
        """Give back everything `proc` holds (it died, or it is us stopping), then ring the doorbell.

        Safe to run twice or from two survivors at once: each script empties the held set it reads.
        """
        def build(pipe: Any, full: bool) -> None:
            for s in sorted(scopes):
                self._script(pipe, "reap", self._keys(s, proc), [proc], full)
            pipe.delete(self._scopes_key(proc))
            pipe.zrem(self.procs_key, proc)

        await self._run(build)
        if scopes:
            await self._ring(sorted(scopes))

    async def _ring(self, scopes: list[str]) -> None:
        """The doorbell: these scopes changed in Redis (every process, this one too, reads them again)."""
        if self.broker is not None:
            await self.broker.publish(self.channel, doorbell(scopes))
            self.redis_commands += 1

    async def _sweep(self) -> None:
        """End grace periods, and forget scopes nobody here watches any more."""
        while True:
            await asyncio.sleep(SWEEP)
            self.sweep_once()

    def sweep_once(self) -> None:
        now = self.clock()
        for scope, loc in list(self.local.items()):
            for uid, until in list(loc.linger.items()):
                if until <= now:
                    self._expire(scope, loc, uid)
            if (isinstance(scope, int) and loc.empty() and scope not in self.to_flush and not loc.changed
                    and not self.hub.watching(scope)):
                del self.local[scope]
        for scope, view in list(self.views.items()):
            if (isinstance(scope, int) and scope not in self.local and not view.running
                    and view.timer is None and not self.hub.watching(scope)):
                del self.views[scope]
