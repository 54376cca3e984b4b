"""Active Now and thread watchers: soft state with leases, O(1) per change (docs/presence.md).

Three parts, one per module:

    presence_local.py   this process's counts: its sockets per scope ("site" or a thread id), grace
                        periods, what changed since the last write
    presence_shared.py  the shared part, in Redis: every process's users per scope, written in
                        batches by Lua scripts (presence_scripts.py), leased, reaped when a process dies
    presence_view.py    what sockets see: per scope the last read and its frame, recomputed at most
                        once per interval and sent only when what it shows changed

A change here is written to Redis in a batch (at most every FLUSH seconds), then one doorbell on the
presence channel names the scopes that changed; every process reads those scopes again, a bounded read
(top 50, the count, the guests), and sends a frame to its own sockets only if what it shows changed:
one encode per scope, the same bytes to every socket. A user whose last socket closes lingers for the
grace period, so a reload or a brief drop shows nothing; an explicit unsubscribe leaves at once.

Without Redis the same class runs with no shared part: the local counts are the whole truth (one
process). Costs are Prometheus series (parley_presence_*: Redis commands, reads, frames and their bytes,
CPU), read by bench.presence from /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .broker import Broker
from .channels import Channels, Scope, parse_doorbell
from .cluster import RedisClient
from .conn import Conn, Frame
from .presence_local import PAGE_DEFAULT, PAGE_MAX, TOP, Brief, Counts, decode_cursor, encode_cursor, name_key
from .presence_shared import FLUSH, Shared
from .presence_view import COALESCE, Views, Watchers

__all__ = ["PAGE_DEFAULT", "PAGE_MAX", "TOP", "Presence", "decode_cursor", "encode_cursor", "name_key"]

log = logging.getLogger(__name__)

SWEEP = 0.5                  # seconds between grace-period checks


class Presence:
    """Counts of this process's sockets per scope, shared through Redis; bounded frames pushed on change."""

    def __init__(self, watchers: Watchers, redis: RedisClient | None, grace: float, lease: float,
                 channels: Channels | None = None, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, coalesce: float = COALESCE, flush: float = FLUSH,
                 broker: Broker | None = None) -> None:
        # Time is a parameter (STYLE 17): `clock` for grace and coalescing, `wall` for leases shared
        # between processes; the flush and coalescing intervals too, so unit tests run in milliseconds.
        self.watchers = watchers
        self.channels = channels if channels is not None else Channels()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.counts = Counts(grace, self._changed, shared=redis is not None, clock=clock)
        # Keys and the doorbell live under the deployment's namespace; the doorbell goes through the broker.
        self.shared = (Shared(redis, self.channels.namespace, lease, self.counts, self._dirty, self._all_dirty,
                              self._spawn, broker, self.channels.presence, flush, wall)
                       if redis is not None else None)
        self.views = Views(self.counts, self.shared, watchers, self._spawn, coalesce, clock)

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        if self.shared is not None:
            self._spawn(self.shared.heartbeat(), "presence-heartbeat")
        self._spawn(self._sweep(), "presence-linger")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def stop(self) -> None:
        """Graceful: give back our references at once and tell the others."""
        self.views.stop()
        flushing = self.shared.flushing if self.shared is not None else None
        for t in list(self.tasks):
            if t is not flushing:
                t.cancel()
        if self.shared is not None:
            await self.shared.stop()

    # -- sockets ---------------------------------------------------------

    def add(self, scope: Scope, user: Brief | None) -> None:
        """A socket of `user` (None: a guest) joined `scope`."""
        self.counts.add(scope, user)

    def remove(self, scope: Scope, user: Brief | None, linger: bool = True) -> None:
        """A socket of `user` left `scope`; with linger, the user stays listed for the grace period."""
        self.counts.remove(scope, user, linger)

    def connect(self, conn: Conn) -> None:
        self.counts.add("site", conn.user)

    def disconnect(self, conn: Conn, linger: bool = True) -> None:
        self.counts.remove("site", conn.user, linger=linger)

    async def welcome(self, scope: Scope, conn: Conn) -> Frame:
        """A socket joined `scope`: counted in it, and the scope's frame it is greeted with."""
        self.counts.add(scope, conn.user)
        return await self.views.frame(scope, conn)

    async def frame(self, scope: Scope, conn: Conn | None = None) -> Frame:
        """The scope's frame for a socket that just joined (encoded once until something changes)."""
        return await self.views.frame(scope, conn)

    # -- reads for HTTP --------------------------------------------------

    async def snapshot(self, scope: Scope) -> tuple[list[Brief], int, int]:
        """(users as a frame shows them, count, guests) now."""
        return await self.views.snapshot(scope)

    async def sync(self) -> None:
        """Until what this process changed so far is in Redis (read-your-writes for HTTP)."""
        if self.shared is not None:
            await self.shared.sync()

    async def online(self, user_ids: list[int]) -> set[int]:
        """Which of these users have a socket open on any process (or closed within the grace period): this
        process's own sockets (which Redis may not have heard of yet), then every process's, as the site
        scope's reference counts in Redis. Notification mail asks (outbox/notify.py: `away` means no socket
        open when the notification is due)."""
        found = self.counts.present("site", user_ids)
        rest = [u for u in user_ids if u not in found]
        if self.shared is None or not rest:
            return found
        return found | await self.shared.present("site", rest)

    async def page(self, scope: Scope, limit: int = PAGE_DEFAULT, after: str | None = None) -> dict[str, Any]:
        """Everyone present, by display name: {users, count, guests, next} (`after` a decoded cursor member)."""
        limit = max(1, min(PAGE_MAX, limit))
        if self.shared is None:
            return self.counts.page(scope, limit, after)
        await self.shared.sync()  # this process's own latest changes are in the answer
        try:
            count, guests, more, members, users = await self.shared.page(scope, limit, after)
        except Exception as exc:  # Redis unreachable: what the frames show (as last read), by name, in one page
            log.warning("presence page read failed: %s", exc)
            users, count, guests = self.views.compose(scope, self.views.view(scope))
            return {"users": sorted(users, key=name_key), "count": count, "guests": guests, "next": None}
        return {"users": users, "count": count, "guests": guests,
                "next": encode_cursor(members[-1]) if more and members else None}

    # -- the doorbell (hub.listen) ---------------------------------------

    def on_message(self, message: bytes) -> None:
        """The doorbell: another (or this) process changed these scopes."""
        for scope in parse_doorbell(message):
            self.views.heard(scope)

    def on_reconnect(self) -> None:
        """Redis may have restarted and forgotten us: write everything again, recompute everything."""
        if self.shared is not None:
            self.shared.rewrite_all()
        self.views.mark_all_dirty()

    # -- between the parts -----------------------------------------------

    def _changed(self, scope: Scope, people: bool = True) -> None:
        """What this process holds in the scope changed (Counts): to Redis, or straight to the view."""
        self.views.changed(scope, people)
        if self.shared is None:
            self.views.mark_dirty(scope)
        else:
            self.shared.queue_flush(scope)

    def _dirty(self, scope: Scope) -> None:
        self.views.mark_dirty(scope)

    def _all_dirty(self) -> None:
        self.views.mark_all_dirty()

    async def _sweep(self) -> None:
        """End grace periods, and forget scopes nobody here watches any more."""
        while True:
            await asyncio.sleep(SWEEP)
            self.sweep_once()

    def sweep_once(self) -> None:
        self.counts.end_grace()
        to_flush = self.shared.to_flush if self.shared is not None else ()
        for scope, loc in list(self.counts.scopes.items()):
            if (isinstance(scope, int) and loc.empty() and scope not in to_flush and not loc.changed
                    and not self.watchers.has_watchers(scope)):
                del self.counts.scopes[scope]
        self.views.forget_unwatched()
