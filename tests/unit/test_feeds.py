"""Feed coalescing with a stepped clock and hand-run timers (no sleeping): the first update of a thread
goes out at once, a burst within the interval sends only its newest frame when the interval ends, threads
are independent, and leaving a feed drops what it held."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from server.live.broker import MemoryBroker
from server.live.channels import Channels
from server.live.channels import feed_message as message
from server.live.feeds import Feeds
from support.clock import Clock


class Timers:
    def __init__(self) -> None:
        self.due: list[list[Any]] = []  # [when, fn, args, cancelled]

    def __call__(self, delay: float, fn: Any, *args: Any) -> Any:
        entry = [delay, fn, args, False]
        self.due.append(entry)

        class Handle:
            def cancel(self) -> None:
                entry[3] = True
        return Handle()

    def run(self) -> None:
        due, self.due = self.due, []
        for _, fn, args, cancelled in due:
            if not cancelled:
                fn(*args)


class FakeConn:
    def __init__(self) -> None:
        self.feeds: set[str] | None = None
        self.sent: list[bytes] = []

    def send(self, frame: Any) -> None:
        self.sent.append(frame.json)


def setup() -> tuple[Feeds, Clock, Timers, FakeConn, str]:
    clock, timers = Clock(100.0), Timers()
    broker = MemoryBroker()
    feeds = Feeds(broker, interval=1.0, clock=clock, later=timers)
    conn = FakeConn()
    channel = Channels().feed(None)
    asyncio.run(feeds.join(conn, channel))  # type: ignore[arg-type]
    return feeds, clock, timers, conn, channel


def test_first_update_goes_out_at_once_and_a_burst_sends_only_its_newest():
    """Frames 1..5 of one thread within a second: 1 at once, then only 5 when the second ends."""
    feeds, clock, timers, conn, channel = setup()
    for i in range(1, 6):
        feeds.on_message(channel, message(7, b'{"n":%d}' % i))
        clock.now += 0.1
    assert conn.sent == [b'{"n":1}']
    assert len(timers.due) == 1 and abs(timers.due[0][0] - 0.9) < 1e-9  # due one interval after the first
    clock.now = 101.0
    timers.run()
    assert conn.sent == [b'{"n":1}', b'{"n":5}']
    clock.now = 102.5  # quiet for longer than the interval: the next goes out at once again
    feeds.on_message(channel, message(7, b'{"n":6}'))
    assert conn.sent[-1] == b'{"n":6}' and not timers.due


def test_threads_are_coalesced_independently():
    """A burst on thread 7 does not hold back the first update of thread 8."""
    feeds, clock, timers, conn, channel = setup()
    feeds.on_message(channel, message(7, b"a1"))
    feeds.on_message(channel, message(7, b"a2"))
    feeds.on_message(channel, message(8, b"b1"))
    assert conn.sent == [b"a1", b"b1"]
    timers.run()
    assert conn.sent == [b"a1", b"b1", b"a2"]


def test_leaving_a_feed_drops_what_it_held_and_stops_delivery():
    """After the last socket leaves, a held frame is never sent and new frames are ignored."""
    feeds, clock, timers, conn, channel = setup()
    feeds.on_message(channel, message(7, b"x1"))
    feeds.on_message(channel, message(7, b"x2"))
    feeds.leave(conn, channel)  # type: ignore[arg-type]
    timers.run()
    feeds.on_message(channel, message(7, b"x3"))
    assert conn.sent == [b"x1"] and conn.feeds == set()


def test_a_malformed_message_is_ignored():
    """A message without a thread id prefix is dropped, not raised."""
    feeds, clock, timers, conn, channel = setup()
    feeds.on_message(channel, b'{"no":"prefix"}')
    assert conn.sent == []


def _publisher() -> tuple[Any, Clock, Timers, list[list[int]]]:
    from server.feedpublisher import Publisher
    clock, timers, flushed = Clock(100.0), Timers(), []
    return Publisher(flushed.append, interval=1.0, clock=clock, later=timers), clock, timers, flushed


def test_publisher_sends_a_first_change_at_once_and_one_deferred_send_per_interval() -> None:
    """The writer side: a thread's first change is due now, a burst after it makes one deferred send."""
    pub, clock, timers, flushed = _publisher()
    assert pub.changed([1]) == [1]
    clock.now += 0.2
    assert pub.changed([1]) == []
    clock.now += 0.2
    assert pub.changed([1, 2]) == [2]  # another thread is independent
    assert len(timers.due) == 1 and timers.due[0][0] == pytest.approx(0.8)  # thread 1: at the end of its interval
    clock.now += 0.6
    timers.run()
    assert flushed == [[1]]
    assert pub.changed([1]) == []  # just announced: the next change waits for the next interval
    clock.now += 1.0
    timers.run()
    assert flushed == [[1], [1]]
    clock.now += 1.0
    assert pub.changed([1]) == [1]  # quiet for an interval: at once again


def test_publisher_close_cancels_deferred_sends() -> None:
    """A process shutting down drops its deferred sends instead of running them on a closed pool."""
    pub, clock, timers, flushed = _publisher()
    pub.changed([7])
    clock.now += 0.1
    pub.changed([7])
    pub.close()
    timers.run()
    assert flushed == []
