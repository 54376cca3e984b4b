"""Live thread lists: the feed channels `feed:all` and `feed:category:{id}` (docs/live.md "Feeds").

The API publishes, after COMMIT, one message per channel for each thread that was created or changed:
the thread id and the feed frame, built once by the writer (channels.feed_message). Every process
subscribes a feed channel while at least one local socket follows that feed (one broker subscription
per channel, not per socket) and forwards the frame to those sockets, coalesced per thread: the first update of a thread
goes out at once, later ones within INTERVAL are held and only the newest is sent when the interval
ends. So a hot thread costs each socket at most about one frame a second, whatever its write rate.

Feeds are soft: nothing is stored or replayed; a client that reconnects reloads its list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .broker import Broker
from .channels import Channels, parse_feed
from .conn import Conn, Frame

log = logging.getLogger(__name__)

INTERVAL = 1.0  # seconds between two frames of one thread on one feed (CONTRACT: about once a second)
MAX_FEEDS = 10  # feeds one connection may follow


class FeedRoom:
    """The local sockets of one feed channel and its per-thread coalescing state."""

    __slots__ = ("members", "last", "held", "timers")

    def __init__(self) -> None:
        self.members: set[Conn] = set()
        self.last: dict[int, float] = {}          # thread → when its last frame went out
        self.held: dict[int, Frame] = {}          # thread → newest frame waiting for its interval to end
        self.timers: dict[int, Any] = {}           # thread → its pending flush (has .cancel())

    def send(self, frame: Frame) -> None:
        for conn in list(self.members):
            conn.send(frame)

    def cancel(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        self.held.clear()


class Feeds:
    """Feed subscriptions of this process. Time is a parameter: `clock` and `later` (call_later) default
    to the event loop's; the unit tests step a fake clock and run the timers themselves."""

    def __init__(self, broker: Broker, interval: float = INTERVAL, clock: Callable[[], float] | None = None,
                 later: Callable[..., Any] | None = None) -> None:
        self.broker = broker
        self.interval = interval
        self.clock = clock
        self.later = later
        self.rooms: dict[str, FeedRoom] = {}

    def _now(self) -> float:
        return self.clock() if self.clock is not None else asyncio.get_running_loop().time()

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> Any:
        if self.later is not None:
            return self.later(delay, fn, *args)
        return asyncio.get_running_loop().call_later(delay, fn, *args)

    async def join(self, conn: Conn, channel: str) -> None:
        room = self.rooms.get(channel)
        if room is None:
            room = self.rooms[channel] = FeedRoom()
            try:
                await self.broker.subscribe(channel)
            except BaseException:
                if not room.members:
                    self.rooms.pop(channel, None)
                raise
        room.members.add(conn)
        if conn.feeds is None:
            conn.feeds = set()
        conn.feeds.add(channel)

    def leave(self, conn: Conn, channel: str) -> None:
        if conn.feeds is not None:
            conn.feeds.discard(channel)
        room = self.rooms.get(channel)
        if room is None:
            return
        room.members.discard(conn)
        if not room.members:
            del self.rooms[channel]
            room.cancel()
            try:
                asyncio.get_running_loop().create_task(self._unsubscribe(channel))
            except RuntimeError:  # no loop (unit tests): nothing to unsubscribe from
                pass

    def leave_all(self, conn: Conn) -> None:
        for channel in list(conn.feeds or ()):
            self.leave(conn, channel)

    async def _unsubscribe(self, channel: str) -> None:
        if channel in self.rooms:  # someone joined again meanwhile
            return
        try:
            await self.broker.unsubscribe(channel)
        except Exception as exc:
            log.warning("feed unsubscribe %s failed: %s", channel, exc)

    def on_message(self, channel: str, message: bytes) -> None:
        room = self.rooms.get(channel)
        if room is None:
            return
        try:
            thread_id, data = parse_feed(message)
        except ValueError:
            log.warning("bad feed message on %s", channel)
            return
        frame = Frame(data)
        now = self._now()
        last = room.last.get(thread_id)
        if last is None or now - last >= self.interval:
            if thread_id not in room.timers:
                room.last[thread_id] = now
                room.send(frame)
                self._forget_old(room, now)
                return
        room.held[thread_id] = frame  # newest wins
        if thread_id not in room.timers:
            delay = max(0.0, (last or now) + self.interval - now)
            room.timers[thread_id] = self._later(delay, self._flush, channel, thread_id)

    def _flush(self, channel: str, thread_id: int) -> None:
        room = self.rooms.get(channel)
        if room is None:
            return
        room.timers.pop(thread_id, None)
        frame = room.held.pop(thread_id, None)
        if frame is not None:
            room.last[thread_id] = self._now()
            room.send(frame)

    def _forget_old(self, room: FeedRoom, now: float) -> None:
        """Keep `last` small: threads quiet for longer than the interval need no entry."""
        if len(room.last) > 1000:
            for tid in [t for t, at in room.last.items() if now - at >= self.interval and t not in room.timers]:
                del room.last[tid]


def channels_for(channels: Channels, tree: Any, category_id: int) -> list[tuple[str, str]]:
    """(channel, feed name) of every feed a thread in this category belongs to: all, its category and
    every ancestor (a category's feed includes its descendants)."""
    out = [(channels.feed(None), "all")]
    node = tree.by_id.get(category_id)
    while node is not None:
        out.append((channels.feed(node["id"]), f"category:{node['slug']}"))
        node = tree.by_id.get(node["parent_id"]) if node["parent_id"] is not None else None
    return out
