"""Read replicas (PARLEY_DATABASE_REPLICA_URLS): reads that may be a little stale go to a streaming replica.

docs/operations.md "Read replicas and failover". What may go to a replica: the reads a guest can make (thread
pages, thread lists, search, feeds, profiles, Atom, sitemaps: the routes marked `replica_read` in server/api),
whoever makes them. Everything else (writes, sessions, notifications, the live path) uses the primary.

Read-your-writes: a successful write (an unsafe method answered 2xx) carries a `parley_wlsn` cookie holding
the primary's WAL position after its commit (store/replication.primary_lsn). A request with that cookie is
served by a replica only once the replica has replayed past it, else by the primary. The cookie lasts as
long as a usable replica can lag (max lag + a few polls): after that every replica used has it anyway.

Health: every POLL seconds each replica is asked how far it has replayed, and the primary where its WAL is.
Lag is measured against the primary's positions: a replica that has replayed past the primary's position
of time T is at most now − T behind (0 when it has replayed everything the primary had at the last poll),
which is right even when nothing is written for hours (replay timestamps are not). A replica is skipped
while it lags more than PARLEY_REPLICA_MAX_LAG_SECONDS, does not answer, or is no longer in recovery (it was
promoted: it is a primary now, and not ours); parley_replica_skipped_total{reason} counts the reads that
would have gone to one and did not. A read that fails on a replica (it went down between polls) marks it
down and is served again by the primary (api/common.replica_read).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from urllib.parse import urlsplit

import asyncpg

from . import db, metrics
from .store import replication

log = logging.getLogger(__name__)

POLL = 0.5  # seconds between health reads of each replica (and of the primary's WAL position)
COOKIE = "parley_wlsn"


def label(url: str) -> str:
    """A replica's name in metrics and logs: host:port, never its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


class Replica:
    __slots__ = ("url", "name", "pool", "replayed", "lag", "healthy", "why")

    def __init__(self, url: str) -> None:
        self.url, self.name = url, label(url)
        self.pool: asyncpg.Pool | None = None
        self.replayed = 0          # LSN replayed, as of the last poll
        self.lag = float("inf")    # seconds behind the primary, as of the last poll
        self.healthy = False
        self.why = "down"          # why it is skipped: down, lag, promoted


class Replicas:
    """The primary pool and the replicas' pools, and which one a read goes to."""

    def __init__(self, primary: asyncpg.Pool, urls: tuple[str, ...], max_lag: float, pool_size: int = 10,
                 poll: float = POLL, statement_cache: int = 100) -> None:
        self.primary = primary
        self.replicas = [Replica(u) for u in urls]
        self.max_lag, self.pool_size, self.poll = max_lag, pool_size, poll
        self.statement_cache = statement_cache
        self.task: asyncio.Task[None] | None = None
        self._turn = itertools.count()
        self._primary_ok = True
        self._marks: deque[tuple[float, int]] = deque(maxlen=max(8, int(4 * max_lag / poll) + 8))

    @property
    def enabled(self) -> bool:
        return bool(self.replicas)

    @property
    def cookie_max_age(self) -> int:
        return int(self.max_lag + 4 * self.poll) + 1

    async def start(self) -> None:
        if not self.replicas:
            return
        await self.check()
        self.task = asyncio.create_task(self._loop(), name="replica-health")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        for r in self.replicas:
            if r.pool is not None:
                await r.pool.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the primary's position could not be read: keep the last verdicts
                log.warning("replica health check failed: %s", exc)

    async def check(self) -> None:
        """One round: the primary's position, then each replica's (in parallel)."""
        try:
            self._marks.append((time.monotonic(), await replication.primary_lsn(self.primary)))
            self._primary_ok = True
        except db.UNAVAILABLE as exc:
            if self._primary_ok:  # once per outage, not every poll
                log.warning("replica health check: the primary's WAL position is unreadable: %s", exc)
            self._primary_ok = False
        await asyncio.gather(*(self._check_one(r) for r in self.replicas))

    async def _check_one(self, r: Replica) -> None:
        try:
            if r.pool is None:
                r.pool = await db.create_pool(r.url, min_size=0, max_size=self.pool_size,
                                              statement_cache=self.statement_cache)
            async with r.pool.acquire(timeout=self.poll * 4) as conn:
                standby, replayed = await asyncio.wait_for(replication.replica_position(conn), self.poll * 4)
        except (*db.UNAVAILABLE, asyncpg.PostgresError) as exc:
            self._set(r, False, "down", float("inf"), f"down ({type(exc).__name__}: {exc})")
            return
        if not standby or replayed is None:
            self._set(r, False, "promoted", float("inf"), "no longer a standby (promoted?)")
            return
        r.replayed = replayed
        lag = self.lag_of(replayed)
        self._set(r, lag <= self.max_lag, "lag", lag, f"{lag:.1f} s behind")

    def lag_of(self, replayed: int) -> float:
        """Seconds behind the primary: now − the newest time the primary's position was ≤ `replayed`."""
        if not self._marks or replayed >= self._marks[-1][1]:
            return 0.0  # it has everything the primary had when last asked (or we never could ask)
        now = time.monotonic()
        for at, lsn in reversed(self._marks):
            if lsn <= replayed:
                return now - at  # an over-estimate by at most one poll
        return now - self._marks[0][0]

    def _set(self, r: Replica, healthy: bool, why: str, lag: float, detail: str) -> None:
        if healthy != r.healthy:
            if healthy:
                log.info("replica %s in use (%.1f s behind)", r.name, lag)
            else:
                log.warning("replica %s skipped: %s", r.name, detail)
        r.healthy, r.why, r.lag = healthy, why, lag
        metrics.REPLICA_LAG.labels(r.name).set(lag if lag != float("inf") else -1)
        metrics.REPLICA_HEALTHY.labels(r.name).set(1 if healthy else 0)

    def mark_down(self, pool: asyncpg.Pool, exc: BaseException) -> None:
        """A read failed on this replica's pool: skip it until a poll finds it well again."""
        for r in self.replicas:
            if r.pool is pool:
                self._set(r, False, "down", float("inf"), f"a read failed ({type(exc).__name__}: {exc})")

    def pick(self, needs: int | None) -> asyncpg.Pool:
        """The pool for one request's reads: a healthy replica that has replayed `needs` (the reader's last
        commit, if any), taken in turn; else the primary. Counts where reads go and why not to a replica."""
        if not self.replicas:
            return self.primary
        healthy = [r for r in self.replicas if r.healthy and r.pool is not None]
        if not healthy:
            metrics.REPLICA_SKIPPED.labels(min((r.why for r in self.replicas), key=_WHY_ORDER.index)).inc()
            metrics.REPLICA_READS.labels("primary").inc()
            return self.primary
        ready = [r for r in healthy if needs is None or r.replayed >= needs]
        if not ready:
            metrics.REPLICA_SKIPPED.labels("behind_writer").inc()
            metrics.REPLICA_READS.labels("primary").inc()
            return self.primary
        chosen = ready[next(self._turn) % len(ready)]
        metrics.REPLICA_READS.labels("replica").inc()
        assert chosen.pool is not None
        return chosen.pool

    def is_replica(self, pool: asyncpg.Pool) -> bool:
        return pool is not self.primary

    async def commit_position(self) -> int | None:
        """The primary's WAL position now (after the caller's commit), for the writer's cookie; None if
        there are no replicas or it cannot be read (then the writer's next reads may be a little stale)."""
        if not self.replicas:
            return None
        try:
            return await replication.primary_lsn(self.primary)
        except db.UNAVAILABLE:
            return None


_WHY_ORDER = ["lag", "promoted", "down"]


def parse_cookie(raw: str | None) -> int | None:
    """The LSN a `parley_wlsn` cookie holds, or None (absent or not a number: the reader gets no promise)."""
    if not raw or len(raw) > 24 or not raw.isdigit():
        return None
    return int(raw)
