"""AsgiConn's slow-consumer rule with a fake ASGI send and a stepped clock: a burst is not slowness,
a sender stuck past STALL_SECONDS is, and memory stays bounded either way."""

from __future__ import annotations

import asyncio
import json

from server.errors import WS_1013_TRY_AGAIN_LATER
from server.live.conn import BURST_FACTOR, STALL_SECONDS, AsgiConn, Frame
from support.clock import Clock

CAP = 16_384


class Client:
    """The ASGI send of a client that reads (open gate) or has stopped reading (closed gate)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.closed: int | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, message: dict) -> None:
        if message["type"] == "websocket.close":
            self.closed = message["code"]
            return
        await self.gate.wait()
        self.texts.append(message["text"])


def frame(i: int, size: int = 4000) -> Frame:
    return Frame(json.dumps({"type": "event", "seq": i, "pad": "é" * (size // 2)}, ensure_ascii=False).encode())


async def test_a_burst_over_the_cap_to_a_reading_socket_is_delivered_whole() -> None:
    """A reading client sent 3× the cap within one loop turn gets every frame, in order, and stays open."""
    clock, client = Clock(100.0), Client()
    conn = AsgiConn(client.send, None, CAP, clock=clock)
    n = 3 * CAP // 4000 + 1
    for i in range(n):
        conn.send(frame(i))
    assert conn.alive and conn.pending_bytes() > CAP
    for _ in range(50):
        await asyncio.sleep(0)
    assert [json.loads(t)["seq"] for t in client.texts] == list(range(n))
    assert conn.alive and conn.pending_bytes() == 0


async def test_a_stuck_sender_over_the_cap_closes_with_1013_after_the_stall() -> None:
    """A client that stopped reading: over the cap but within STALL_SECONDS the socket stays; past it, 1013."""
    clock, client = Clock(100.0), Client()
    client.gate.clear()
    conn = AsgiConn(client.send, None, CAP, clock=clock)
    for i in range(6):
        conn.send(frame(i))
    await asyncio.sleep(0)  # the sender takes frame 0 and blocks in send
    clock.now += STALL_SECONDS / 2
    conn.send(frame(6))
    assert conn.alive
    clock.now += STALL_SECONDS
    conn.send(frame(7))
    assert not conn.alive and conn.close_code == WS_1013_TRY_AGAIN_LATER
    client.gate.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.closed == WS_1013_TRY_AGAIN_LATER
    assert len(client.texts) <= 1  # the queued frames were dropped, not sent after the close


async def test_a_queue_past_the_burst_bound_closes_at_once() -> None:
    """However recent the sender's progress, a queue beyond BURST_FACTOR × the cap closes the socket."""
    clock, client = Clock(100.0), Client()
    conn = AsgiConn(client.send, None, CAP, clock=clock)
    sent = 0
    while conn.alive:
        conn.send(frame(sent))
        sent += 1
        assert sent < 1000
    assert conn.close_code == WS_1013_TRY_AGAIN_LATER
    assert sent * 4000 > BURST_FACTOR * CAP


async def test_an_idle_sender_is_not_taken_for_a_stuck_one() -> None:
    """Hours without traffic, then one burst over the cap: delivered, because the queue was empty meanwhile."""
    clock, client = Clock(100.0), Client()
    conn = AsgiConn(client.send, None, CAP, clock=clock)
    conn.send(frame(0))
    for _ in range(5):
        await asyncio.sleep(0)
    clock.now += 3 * 3600
    for i in range(1, 6):
        conn.send(frame(i))
    assert conn.alive


async def test_the_inbox_is_a_queue_for_one_reader() -> None:
    """Inbox: items in order, get() waits for the next put, a cancelled get() leaves it usable, and an
    empty inbox holds no deque."""
    from server.live.conn import Inbox
    box = Inbox()
    box.put_nowait(1)
    box.put_nowait(2)
    assert box.qsize() == 2 and await box.get() == 1 and await box.get() == 2
    assert box.empty() and box.items is None
    waiting = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    box.put_nowait(3)
    assert await waiting == 3
    cancelled = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert box.getter is None
    box.put_nowait(4)
    assert await box.get() == 4


async def test_the_gate_lets_waiters_through_when_set() -> None:
    """Gate: wait() returns at once when set, blocks when cleared, and every waiter goes when set again."""
    from server.live.conn import Gate
    gate = Gate()
    gate.set()
    assert await gate.wait() is True
    gate.clear()
    waiters = [asyncio.ensure_future(gate.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    gate.set()
    assert await asyncio.gather(*waiters) == [True, True, True] and gate.waiters is None
