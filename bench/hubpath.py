"""The delivery path alone, in-process: CPU per event per socket from the broker's callback to send().

    python -m bench.hubpath --sockets 500,5000 --events 2000 --repeat 7
    (cd /path/to/another/tree && python /path/to/bench/hubpath.py)   # that tree's `server`, same script

No sockets, no Redis, no database: a Hub on a MemoryBroker with one ready room of N stand-in sockets whose
send() only counts, fed N event frames through Hub.on_message exactly as the subscriber hands them over
(large rooms drain in chunks on the loop, as in production). What is left is the hub's own work per
event and per socket: routing, ordering, the replay cache, the metrics and the loop over the room. It
is the part of bench.fanout's "µs CPU/frame" that a change to the live core can move, without the
kernel's write() and the load generators that dominate (and blur) that figure on a shared machine.
Reported: the best and the median of `--repeat` runs, in ns per event per socket.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path.cwd()))  # the `server` package of the tree this runs in

from server.live.broker import MemoryBroker  # noqa: E402
from server.live.conn import Conn, Frame  # noqa: E402
from server.live.hub import Hub  # noqa: E402
from server.wire import event_frame  # noqa: E402


class Sink(Conn):
    """A socket that takes frames and does nothing with them (what is measured is the hub)."""

    __slots__ = ("got",)

    def __init__(self) -> None:
        super().__init__(None, 1 << 20)
        self.got = 0

    def send(self, frame: Frame) -> None:
        self.got += 1

    def close(self, code: int, reason: str = "") -> None:
        self.alive = False


def ready_room(hub: Hub, thread_id: int, conns: list[Sink]) -> tuple[str, Any]:
    """A ready room of `conns` at seq 0 and its channel, built through whichever API this tree has."""
    loop = asyncio.get_running_loop()
    rooms = hub.rooms
    if hasattr(rooms, "new"):  # rooms.py (issue 26)
        room = rooms.new(thread_id)
        channel = hub.channels.thread(thread_id)
    else:  # the hub of before
        from server.live.hub import Room
        room = rooms[thread_id] = Room(thread_id, hub.tally)
        channel = hub.broker.thread_channel(thread_id)  # type: ignore[attr-defined]
    room.ready = loop.create_future()
    room.ready.set_result(None)
    for c in conns:
        room.members[c] = 0
    return channel, room


async def once(sockets: int, events: int, body: int) -> float:
    hub = Hub(None, MemoryBroker())  # type: ignore[arg-type]
    conns = [Sink() for _ in range(sockets)]
    channel, room = ready_room(hub, 7, conns)
    data = b'{"id":1,"body":"%s"}' % (b"x" * body)
    frames = [event_frame(7, seq, "post.created", data) for seq in range(1, events + 1)]
    on_message = hub.on_message
    started = time.process_time()
    for message in frames:
        on_message(channel, message)
        if room.task is not None:  # a large room drains on the loop, CHUNK sockets per turn
            await room.task
    elapsed = time.process_time() - started
    assert all(c.got == events for c in conns), "not every event reached every socket"
    return elapsed / (events * sockets) * 1e9


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(prog="python -m bench.hubpath", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sockets", default="500,5000", help="room sizes, comma-separated")
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--body", type=int, default=200, help="bytes of post body in each event")
    a = p.parse_args(argv)
    rows = []
    for n in (int(x) for x in a.sockets.split(",")):
        runs = [asyncio.run(once(n, a.events, a.body)) for _ in range(a.repeat)]
        rows.append({"sockets": n, "best_ns": round(min(runs), 1), "median_ns": round(statistics.median(runs), 1),
                     "runs": [round(r, 1) for r in runs]})
        print(f"{Path.cwd().name}: {n} sockets: {rows[-1]['best_ns']} ns best, {rows[-1]['median_ns']} ns median "
              f"per event per socket ({a.repeat} runs of {a.events} events)", flush=True)
    return rows


if __name__ == "__main__":
    main()
