"""Hub ordering and batching logic, with in-memory sockets and a stand-in backlog (unit tests of logic;
the behaviour end to end is covered against real servers in the other live tests)."""

from __future__ import annotations

import asyncio
import datetime
import json

from server.live.broker import MemoryBroker
from server.live.conn import Conn, Frame
from server.live.hub import CHUNK, Hub, Room
from server.wire import event_frame


class FakeConn(Conn):
    __slots__ = ("writes",)

    def __init__(self) -> None:
        super().__init__(None, 1 << 20)
        self.writes: list[Frame] = []

    def send(self, frame: Frame) -> None:
        self.writes.append(frame)

    def close(self, code: int, reason: str = "") -> None:
        self.alive = False

    def seqs(self) -> list[int]:
        out = []
        for w in self.writes:
            for part in (w.parts or [w]):
                out.append(json.loads(part.json)["seq"])
        return out


class Backlog:
    """Stands in for the pool: serves thread_events rows from a dict."""

    def __init__(self, events: dict[int, bytes]) -> None:
        self.events = events

    async def fetch(self, sql: str, thread_id: int, after: int, limit: int, budget: int = 0) -> list[dict]:
        return [{"seq": s, "name": "post.created", "data": d.decode(), "created_at": datetime.datetime.now()}
                for s, d in sorted(self.events.items()) if s > after][:limit]


def frame(seq: int) -> Frame:
    return Frame(event_frame(7, seq, "post.created", b'{"n":%d}' % seq))


def ready_room(hub: Hub, seq: int) -> Room:
    room = Room(7)
    room.seq = seq
    room.ready = asyncio.get_running_loop().create_future()
    room.ready.set_result(None)
    hub.rooms[7] = room
    return room


async def test_large_room_behind_gets_queued_events_in_one_write_per_socket():
    """A room over CHUNK sockets that falls behind writes the waiting events to each socket in ONE write,
    in order; a socket that joined mid-batch gets only what it had not had."""
    hub = Hub(None, MemoryBroker())  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    conns = [FakeConn() for _ in range(CHUNK + 100)]
    for c in conns:
        room.members[c] = 1
    late = conns[-1]
    room.members[late] = 3  # already had up to 3
    for seq in (2, 3, 4):
        hub.accept(room, seq, frame(seq))
    await asyncio.sleep(0.05)
    for c in conns[:-1]:
        assert len(c.writes) == 1 and c.seqs() == [2, 3, 4]
    assert late.seqs() == [4]
    assert room.members[conns[0]] == 4 and room.seq == 4


async def test_gap_is_filled_from_the_backlog_and_duplicates_dropped():
    """An event past a gap is held until the missing ones are read from the backlog; a duplicate is dropped."""
    backlog = Backlog({s: b'{"n":%d}' % s for s in range(1, 6)})
    hub = Hub(backlog, MemoryBroker())  # type: ignore[arg-type]
    room = ready_room(hub, 2)
    c = FakeConn()
    room.members[c] = 2
    hub.accept(room, 5, frame(5))      # 3 and 4 are missing
    hub.accept(room, 2, frame(2))      # old: dropped
    await asyncio.sleep(0.05)
    hub.accept(room, 4, frame(4))      # arrives after the backfill: duplicate
    assert c.seqs() == [3, 4, 5]
    assert room.seq == 5 and not room.held
