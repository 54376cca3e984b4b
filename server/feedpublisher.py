"""Publishing thread-list updates on the feed channels after COMMIT (server/live/feeds.py).

A feed frame carries the thread as it is when it is read, so a hot thread needs no more than one a
second: Publisher sends the first change of a thread at once and, within the interval that follows,
only one more, at its end, read then (so it holds every change made meanwhile). That is the rate the
receiving side lets through anyway (live/feeds.py coalesces per socket too, which covers several
writing processes); here it saves the thread read and the publishes of every other write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from . import wire
from .live import feeds
from .live.broker import Broker
from .live.channels import Channels, feed_message
from .store import categories, threads

log = logging.getLogger(__name__)


class FeedPublisher:
    """This process's feed publishing: announce changed threads now, or coalesced (Publisher below).

    Feeds are soft: a failure is logged, never an error for the writer."""

    def __init__(self, pool: asyncpg.Pool, broker: Broker, channels: Channels) -> None:
        self.pool = pool
        self.broker = broker
        self.channels = channels
        self.coalescer = Publisher(self._send_later)
        self.background: set[asyncio.Task[None]] = set()  # deferred sends in flight (not garbage-collected)

    async def publish(self, thread_ids: list[int], moved_from: int | None = None) -> None:
        """Announce that these threads changed: now, or at the end of their interval.

        `moved_from`: the category a (single) thread was moved out of; the feeds it left hear it as deleted.
        A move is sent at once (the deferred send would not know where the thread came from)."""
        if not thread_ids:
            return
        if moved_from is not None:
            await self.send(thread_ids, moved_from)
            return
        due = self.coalescer.changed(thread_ids)
        if due:
            await self.send(due)

    async def send(self, thread_ids: list[int], moved_from: int | None = None) -> None:
        """The current Thread of each (`deleted: true` when it was deleted) to feed:all and to the feeds of
        its category and every ancestor."""
        try:
            rows = await threads.rows(self.pool, thread_ids)
            tree = await categories.tree(self.pool)
            sends = []
            for row in rows:
                thread = threads.thread_dict(row, tree)
                if row["deleted"]:
                    thread["deleted"] = True
                chain = feeds.channels_for(self.channels, tree, row["category_id"])
                for channel, name in chain:
                    sends.append(self.broker.publish(channel, feed_message(row["id"], wire.feed(name, thread))))
                if moved_from is not None and moved_from != row["category_id"] and moved_from in tree.by_id:
                    kept = {c for c, _ in chain}
                    gone = {**thread, "deleted": True}
                    for channel, name in feeds.channels_for(self.channels, tree, moved_from):
                        if channel not in kept:
                            sends.append(self.broker.publish(channel, feed_message(row["id"], wire.feed(name, gone))))
            for r in await asyncio.gather(*sends, return_exceptions=True):
                if isinstance(r, Exception):
                    log.warning("feed publish failed: %s", r)
        except Exception as exc:
            log.warning("feed update of %s failed: %s", thread_ids, exc)

    def _send_later(self, thread_ids: list[int]) -> None:
        task = asyncio.get_running_loop().create_task(self.send(thread_ids), name="feed-send")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def close(self) -> None:
        self.coalescer.close()


class Publisher:
    """Which changed threads to announce now, and deferred sends for the rest (one per thread at most).

    `flush(ids)` is called when an interval ends for threads that changed during it. Time is a
    parameter like in live/feeds.py: `clock` and `later` default to the event loop's."""

    def __init__(self, flush: Callable[[list[int]], Any], interval: float = feeds.INTERVAL,
                 clock: Callable[[], float] | None = None, later: Callable[..., Any] | None = None) -> None:
        self.flush = flush
        self.interval = interval
        self.clock = clock
        self.later = later
        self.sent: dict[int, float] = {}   # thread → when it was last announced
        self.waiting: dict[int, Any] = {}  # thread → its deferred send (has .cancel())

    def _now(self) -> float:
        return self.clock() if self.clock is not None else asyncio.get_running_loop().time()

    def changed(self, thread_ids: list[int]) -> list[int]:
        """The threads to announce now; the others get a deferred send at the end of their interval."""
        now = self._now()
        due = []
        for tid in thread_ids:
            if tid in self.waiting:
                continue  # its deferred send reads the thread later: this change is in it
            last = self.sent.get(tid)
            if last is None or now - last >= self.interval:
                self.sent[tid] = now
                due.append(tid)
            else:
                self.waiting[tid] = self._later(last + self.interval - now, self._fire, tid)
        if len(self.sent) > 1000:  # threads quiet for longer than the interval need no entry
            for tid in [t for t, at in self.sent.items() if now - at >= self.interval and t not in self.waiting]:
                del self.sent[tid]
        return due

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> Any:
        if self.later is not None:
            return self.later(delay, fn, *args)
        return asyncio.get_running_loop().call_later(delay, fn, *args)

    def _fire(self, thread_id: int) -> None:
        self.waiting.pop(thread_id, None)
        self.sent[thread_id] = self._now()
        self.flush([thread_id])

    def close(self) -> None:
        for handle in self.waiting.values():
            handle.cancel()
        self.waiting.clear()
