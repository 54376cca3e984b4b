"""Presence in Redis: every process's part of each scope, shared, leased, reaped (docs/presence.md).

A scope's members live in keys shared by all processes, so no process ever reads another's whole list
({ns} is the deployment's namespace, parley:<id>; {S} is the scope, a Redis Cluster hash tag, so one
scope's keys share a slot and one Lua script, presence_scripts.py, updates them atomically):

  {ns}:pr:{S}:t         sorted set  user id → arrival number (ZREVRANGE 0 49: the frame's top 50; ZCARD: count)
  {ns}:pr:{S}:n         sorted set  "lowercased display name\\0user id" scored 0 (ZRANGEBYLEX: paging by name)
  {ns}:pr:{S}:b / :m    hashes      user id → User brief JSON / → its :n member
  {ns}:pr:{S}:r         hash        user id → how many processes hold the user (reference count)
  {ns}:pr:{S}:q         counter     arrival numbers (INCR: a total order, no clocks compared)
  {ns}:pr:{S}:g         hash        proc → guest sockets there
  {ns}:pr:{S}:h:{proc}  set         the users this process holds in the scope (makes every write idempotent)
  {ns}:pr:s:{proc}      set         the scopes this process holds (what to clean up when it dies)
  {ns}:pr:procs         sorted set  proc → lease expiry (unix time)

A user enters :t when the first process takes them (reference 0 → 1) and leaves it when the last lets
go (1 → 0). Shared keys carry 2 leases as TTL and held sets 4, renewed on a jittered heartbeat. A
process whose lease ran out is reaped by any survivor: one script per scope gives back its references
(O(its users), once). A graceful shutdown reaps itself.

Local changes (presence_local.py) are written in a batch at most every FLUSH seconds: one EVALSHA per
changed scope, then, once that pipeline has executed, one doorbell naming the scopes on the presence
channel (never inside the pipeline: on a cluster its writes land on several nodes and must all be in
first). Every process then reads those scopes again (presence_view.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError

from .. import metrics, wire
from .broker import Broker
from .channels import Scope, doorbell
from .cluster import RedisClient
from .presence_local import Brief, Counts, Local, name_key
from .presence_scripts import SCRIPTS, SHAS
from .rooms import Spawn

log = logging.getLogger(__name__)

FLUSH = 0.1                  # seconds: batch local changes into one Redis pipeline
RETRY = 1.0                  # seconds before a failed flush is tried again

Build = Callable[[Any, bool], None]  # fills a pipeline; True: scripts by their text (after NOSCRIPT)


class Shared:
    """This process's part of presence in Redis: written in batches, kept alive by a lease, and the parts
    of processes that died given back. `dirty(scope)` / `all_dirty()` ask the views to read again."""

    def __init__(self, redis: RedisClient, namespace: str, lease: float, counts: Counts,
                 dirty: Callable[[Scope], None], all_dirty: Callable[[], None], spawn: Spawn,
                 broker: Broker | None = None, channel: str = "", flush: float = FLUSH,
                 wall: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.ns = namespace
        self.lease = lease
        self.counts = counts
        self.dirty = dirty
        self.all_dirty = all_dirty
        self.spawn = spawn
        # The doorbell goes through the broker, after the pipeline it announces has executed.
        self.broker = broker
        self.channel = channel
        self.flush_every = flush
        self.wall = wall  # wall time: leases are compared between processes
        self.proc = uuid.uuid4().hex[:12]
        self.procs_key = f"{namespace}:pr:procs"
        self.to_flush: set[Scope] = set()
        self.flush_handle: asyncio.TimerHandle | None = None
        self.flushing: asyncio.Task[None] | None = None
        self.flush_gen = 0  # successful flushes so far (see Local.pending)
        self.reaping: set[str] = set()
        self.stopped = False

    def keys(self, scope: Scope | str, proc: str) -> list[str]:
        base = f"{self.ns}:pr:{{{scope}}}"
        return [f"{base}:h:{proc}", f"{base}:r", f"{base}:t", f"{base}:n", f"{base}:b", f"{base}:m",
                f"{base}:q", f"{base}:g"]

    def scopes_key(self, proc: str) -> str:
        return f"{self.ns}:pr:s:{proc}"

    def ttls(self) -> tuple[int, int]:
        return int(self.lease * 2000), int(self.lease * 4000)

    @staticmethod
    def script(pipe: Any, name: str, keys: list[str], args: list[Any], full: bool = False) -> None:
        if full:  # EVAL loads the script too: after NOSCRIPT (a Redis that restarted, a new cluster node)
            pipe.execute_command("EVAL", SCRIPTS[name], len(keys), *keys, *args)
        else:
            pipe.execute_command("EVALSHA", SHAS[name], len(keys), *keys, *args)

    async def run(self, build: Build) -> list[Any]:
        """Run a pipeline built by build(pipe, full); once more with the scripts' text on NOSCRIPT."""
        for full in (False, True):
            pipe = self.redis.pipeline(transaction=False)
            build(pipe, full)
            metrics.PRESENCE_REDIS_COMMANDS.inc(len(pipe))
            try:
                return list(await pipe.execute())
            except Exception as exc:
                if full or not (isinstance(exc, NoScriptError) or "NOSCRIPT" in str(exc)
                                or "No matching script" in str(exc)):
                    raise
        raise AssertionError("unreachable")

    # -- reads -----------------------------------------------------------

    async def view(self, scope: Scope, top: int) -> tuple[int, int, int, list[Brief]]:
        """What a frame of this scope shows, O(top) bytes however many are present: (count, guests of all
        processes, our guests as Redis has them, the newest `top` briefs)."""
        metrics.PRESENCE_READS.inc()
        keys = self.keys(scope, self.proc)
        (out,) = await self.run(lambda pipe, full: self.script(pipe, "view", keys, [top, self.proc], full))
        started = time.thread_time()
        briefs = [wire.decode(b) for b in out[3:] if b]
        metrics.PRESENCE_CPU.inc(time.thread_time() - started)
        return int(out[0]), int(out[1]), int(out[2]), briefs

    async def page(self, scope: Scope, limit: int, after: str | None) -> tuple[int, int, bool, list[str], list[Brief]]:
        """One page by display name after the member `after`: (count, guests, more, members, briefs)."""
        keys = self.keys(scope, self.proc)
        (out,) = await self.run(lambda pipe, full: self.script(pipe, "page", keys, [after or "", limit], full))
        members = [m.decode() if isinstance(m, bytes) else m for m in out[3::2]]
        return int(out[0]), int(out[1]), int(out[2]) == 1, members, [wire.decode(b) for b in out[4::2] if b]

    async def present(self, scope: Scope, user_ids: list[int]) -> set[int]:
        """Those of `user_ids` some process holds in `scope` (the scope's reference counts, :r): one HMGET."""
        metrics.PRESENCE_REDIS_COMMANDS.inc()
        values = await self.redis.hmget(self.keys(scope, self.proc)[1], [str(u) for u in user_ids])
        return {u for u, v in zip(user_ids, values, strict=True) if v is not None and int(v) > 0}

    # -- writes ----------------------------------------------------------

    def queue_flush(self, scope: Scope, delay: float | None = None) -> None:
        self.to_flush.add(scope)
        if self.flush_handle is None and not self.stopped:
            self.flush_handle = asyncio.get_running_loop().call_later(
                self.flush_every if delay is None else delay, self._flush_soon)

    def _flush_soon(self) -> None:
        self.flush_handle = None
        if self.flushing is not None:  # one write at a time, in order: try again when it is done
            self.flush_handle = asyncio.get_running_loop().call_later(self.flush_every, self._flush_soon)
            return
        self.flushing = self.spawn(self._flush(), "presence-flush")
        self.flushing.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
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
        if not scopes or self.stopped:
            return
        shared_ttl, held_ttl = self.ttls()
        batches: list[tuple[Scope, Local, list[int], bool, bool, list[Any]]] = []
        for s in scopes:
            loc = self.counts.get(s)
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
            pipe.sadd(self.scopes_key(self.proc), *(str(b[0]) for b in batches))
            pipe.pexpire(self.scopes_key(self.proc), held_ttl)
            for s, loc, _, _, _, args in batches:
                self.script(pipe, "apply", self.keys(s, self.proc), args, full)
                if loc.empty():  # nothing of ours left there: nothing to reap there if we die
                    pipe.srem(self.scopes_key(self.proc), str(s))

        metrics.PRESENCE_CPU.inc(time.thread_time() - started)
        try:
            await self.run(build)
            await self.ring([str(b[0]) for b in batches])
        except Exception as exc:  # Redis down: the same ops again, a little later (they are idempotent)
            log.warning("presence flush failed: %s", exc)
            for s, loc, uids, guests, rewrite, _ in batches:
                for uid in uids:
                    loc.changed[uid] = None
                loc.guests_changed |= guests
                loc.rewrite |= rewrite
                self.queue_flush(s, RETRY)
                self.dirty(s)
            return
        self.flush_gen += 1
        for _, loc, uids, _, _, _ in batches:
            for uid in uids:
                if uid in loc.pending:
                    loc.pending[uid] = self.flush_gen

    def rewrite_all(self) -> None:
        """Redis may have restarted and forgotten us: write everything again."""
        for s, loc in self.counts.scopes.items():
            loc.rewrite = True
            self.queue_flush(s)

    async def ring(self, scopes: list[str]) -> None:
        """The doorbell: these scopes changed in Redis (every process, this one too, reads them again)."""
        if self.broker is not None:
            await self.broker.publish(self.channel, doorbell(scopes))
            metrics.PRESENCE_REDIS_COMMANDS.inc()

    # -- leases ----------------------------------------------------------

    async def heartbeat(self) -> None:
        """Renew our lease (with jitter, so processes do not beat in step) and reap dead processes."""
        while True:
            await asyncio.sleep(self.lease / 4 * (0.8 + 0.4 * random.random()))
            await self.beat()

    async def beat(self) -> None:
        """One heartbeat: renew our lease and keys, rewrite what Redis lost, reap processes whose lease ran out."""
        now = self.wall()
        shared_ttl, held_ttl = self.ttls()
        scopes = [s for s, loc in self.counts.scopes.items() if not loc.empty() and not loc.rewrite]

        def build(pipe: Any, full: bool) -> None:
            pipe.zadd(self.procs_key, {self.proc: now + self.lease})
            pipe.pexpire(self.scopes_key(self.proc), held_ttl)
            pipe.zrange(self.procs_key, 0, -1, withscores=True)
            for s in scopes:
                loc = self.counts.scopes[s]
                self.script(pipe, "renew", self.keys(s, self.proc),
                            [shared_ttl, held_ttl, 1 if loc.briefs else 0, loc.guests, self.proc], full)

        try:
            results = await self.run(build)
        except Exception as exc:
            log.warning("presence heartbeat failed: %s", exc)
            self.dirty("site")
            return
        for s, ok in zip(scopes, results[3:], strict=True):
            if not ok and (loc := self.counts.get(s)) is not None:  # Redis lost our part (restarted?): write it whole
                loc.rewrite = True
                self.queue_flush(s)
        for p, expiry in results[2]:
            proc = p.decode() if isinstance(p, bytes) else p
            if proc == self.proc:
                continue
            if expiry < now:
                self.spawn(self._reap_dead(proc), "presence-reap")
            elif expiry - now < self.lease / 4 * 1.2 + 1:
                # A lease running out before our next beat is most likely a dead process: look again right
                # when it ends rather than up to a beat later (if it renews meanwhile, nothing happens).
                asyncio.get_running_loop().call_later(max(0.0, expiry - self.wall()) + 0.05, self._check_dead)
        self.dirty("site")  # cheap (a bounded read) safety net for a doorbell lost without a reconnect

    def _check_dead(self) -> None:
        if not self.stopped:
            self.spawn(self._check_dead_now(), "presence-reap")

    async def _check_dead_now(self) -> None:
        try:
            dead = await self.redis.zrangebyscore(self.procs_key, "-inf", self.wall())
        except Exception as exc:
            log.warning("presence lease check failed: %s", exc)
            return
        for p in dead:
            proc = p.decode() if isinstance(p, bytes) else str(p)
            if proc != self.proc:
                await self._reap_dead(proc)

    async def _reap_dead(self, proc: str) -> None:
        if proc in self.reaping:
            return
        self.reaping.add(proc)
        try:
            scopes = {s.decode() if isinstance(s, bytes) else s
                      for s in await self.redis.smembers(self.scopes_key(proc))}
            await self.reap(proc, scopes)
            log.info("presence: reaped process %s (%d scopes)", proc, len(scopes))
        except Exception as exc:
            log.warning("presence reap of %s failed: %s", proc, exc)
        finally:
            self.reaping.discard(proc)
        self.all_dirty()

    async def reap(self, proc: str, scopes: set[str]) -> None:
        """Give back everything `proc` holds (it died, or it is us stopping), then ring the doorbell.

        Safe to run twice or from two survivors at once: each script empties the held set it reads.
        """
        def build(pipe: Any, full: bool) -> None:
            for s in sorted(scopes):
                self.script(pipe, "reap", self.keys(s, proc), [proc], full)
            pipe.delete(self.scopes_key(proc))
            pipe.zrem(self.procs_key, proc)

        await self.run(build)
        if scopes:
            await self.ring(sorted(scopes))

    async def stop(self) -> None:
        """Graceful: let a write in flight land, then give back our references at once and tell the others."""
        self.stopped = True
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        if self.flushing is not None:  # our reap must come after it
            await asyncio.wait([self.flushing], timeout=2)
        try:
            await asyncio.wait_for(self.reap(self.proc, {str(s) for s in self.counts.scopes} | {"site"}), 2)
        except Exception as exc:
            log.warning("could not remove presence entries on shutdown: %s", exc)
