"""Hub ordering, gaps, the held buffer, batched backfill, back-off and drain, with in-memory sockets, a
stand-in pool and an injectable clock (unit tests of logic: nothing sleeps; the behaviour end to end is
covered against real servers in the other live tests)."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import pytest

from server.live import hub as hub_module
from server.live.broker import MemoryBroker
from server.live.channels import Channels
from server.live.conn import Conn, Frame
from server.live.hub import (
    BACKFILL_ROOMS,
    BACKOFF_FIRST,
    BACKOFF_MAX,
    CHUNK,
    HELD_BYTES,
    RECENT_BYTES,
    Hub,
    Room,
)
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
    """Stands in for the asyncpg pool: serves thread_events rows from a dict per thread, counts the
    queries, records the acquire timeouts, and fails acquires while `down` is set."""

    def __init__(self, events: dict[int, dict[int, bytes]]) -> None:
        self.events = events  # thread → seq → data
        self.heads: dict[int, int] = {}  # threads.seq where it is not the last stored event (all after it pruned)
        self.queries: list[str] = []
        self.timeouts: list[float | None] = []
        self.down: Exception | None = None
        self.during_fetch: Any = None  # called inside a query, before it answers

    def head(self, tid: int) -> int:
        return self.heads.get(tid, max(self.events[tid], default=0))

    def acquire(self, timeout: float | None = None) -> Backlog._Ctx:
        self.timeouts.append(timeout)
        return Backlog._Ctx(self)

    class _Ctx:
        def __init__(self, backlog: Backlog) -> None:
            self.backlog = backlog

        async def __aenter__(self) -> Backlog:
            if self.backlog.down is not None:
                raise self.backlog.down
            return self.backlog

        async def __aexit__(self, *exc: object) -> None:
            return None

    def _rows(self, tid: int, after: int, limit: int, budget: int) -> list[dict]:
        rows, upto = [], 0
        for s, d in sorted(self.events.get(tid, {}).items()):
            if s <= after or len(rows) >= limit or upto >= budget:
                continue
            upto += len(d)
            rows.append({"seq": s, "name": "post.created", "data": d.decode(), "created_at": datetime.datetime.now()})
        return rows

    async def fetch(self, sql: str, *args: Any) -> list[dict]:
        self.queries.append(sql)
        if self.during_fetch is not None:
            self.during_fetch()
        if "AND deleted" in sql:  # the hub's batched deleted check: nothing here is deleted
            return []
        if "unnest" in sql:  # store.events.frames_after
            tids, afters, limit, budget = args
            out = []
            for tid, after in zip(tids, afters, strict=True):
                head = self.head(tid) if tid in self.events else None
                rows = self._rows(tid, after, limit, budget) or [{"seq": None, "name": None, "data": None}]
                out += [{"thread_id": tid, "head": head, **r} for r in rows]
            return out
        tid, after, limit, budget = args  # store.events.since
        return self._rows(tid, after, limit, budget)

    async def fetchval(self, sql: str, tid: int) -> Any:  # store.threads.live_seq: nothing here is deleted
        self.queries.append(sql)
        return self.head(tid) if tid in self.events else None


class Clock:
    """A clock that moves only when the hub sleeps: back-off waits are recorded, never slept."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.naps: list[float] = []
        self.on_nap: Any = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.naps.append(round(delay, 6))
        self.now += delay
        if self.on_nap is not None:
            self.on_nap(len(self.naps))
        await asyncio.sleep(0)


def data(n: int, size: int = 0) -> bytes:
    return b'{"n":%d,"pad":"%s"}' % (n, b"x" * size)


def frame(seq: int, tid: int = 7, size: int = 0) -> Frame:
    return Frame(event_frame(tid, seq, "post.created", data(seq, size)))


def ready_room(hub: Hub, seq: int, tid: int = 7) -> Room:
    room = Room(tid, hub.tally)
    room.seq = seq
    room.ready = asyncio.get_running_loop().create_future()
    room.ready.set_result(None)
    hub.rooms[tid] = room
    return room


async def settle(hub: Hub) -> None:
    """Run the backfiller until no room is behind (it never sleeps with the fake clock)."""
    if hub._backfiller is not None:
        await asyncio.wait_for(hub._backfiller, 10)


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
    assert room.task is not None
    await asyncio.wait_for(room.task, 5)
    for c in conns[:-1]:
        assert len(c.writes) == 1 and c.seqs() == [2, 3, 4]
    assert late.seqs() == [4]
    assert room.members[conns[0]] == 4 and room.seq == 4


async def test_gap_is_filled_from_the_backlog_and_duplicates_dropped():
    """An event past a gap is held until the missing ones are read from the backlog; a duplicate is dropped."""
    clock = Clock()
    backlog = Backlog({7: {s: data(s) for s in range(1, 6)}})
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 2)
    c = FakeConn()
    room.members[c] = 2
    hub.accept(room, 5, frame(5))      # 3 and 4 are missing
    hub.accept(room, 2, frame(2))      # old: dropped
    await settle(hub)
    hub.accept(room, 4, frame(4))      # arrives after the backfill: duplicate
    assert c.seqs() == [3, 4, 5]
    assert room.seq == 5 and not room.held and room.held_bytes == 0 and not room.behind
    assert backlog.timeouts == [hub_module.ACQUIRE_TIMEOUT]  # the one read waited for the pool with a bound


async def test_reconnect_backfills_every_room_in_one_query_per_batch_then_held_frames():
    """After a broker reconnect the rooms' missed events are read in ONE query per BACKFILL_ROOMS rooms (not
    one per room), each room gets them in seq order, and a frame that arrived during the read follows."""
    n = BACKFILL_ROOMS + 44
    backlog = Backlog({tid: {s: data(s) for s in range(1, 4 + tid % 3)} for tid in range(1, n + 1)})
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    conns = {}
    for tid in range(1, n + 1):
        room = ready_room(hub, 1, tid)
        conns[tid] = FakeConn()
        room.members[conns[tid]] = 1

    def live_frame_meanwhile() -> None:  # published after the read's snapshot: held, then delivered
        head = backlog.head(1)
        backlog.events[1][head + 1] = data(head + 1)
        hub.accept(hub.rooms[1], head + 1, frame(head + 1, tid=1))
        backlog.during_fetch = None

    backlog.during_fetch = live_frame_meanwhile
    hub.on_reconnect()
    await settle(hub)
    batched = [q for q in backlog.queries if "unnest" in q]
    assert len(batched) == 2 and len(backlog.queries) == 2  # ceil(n / BACKFILL_ROOMS), nothing per room
    for tid, c in conns.items():
        assert c.seqs() == list(range(2, backlog.head(tid) + 1)), tid
    assert conns[1].seqs()[-1] == 5 and not hub.behind


async def test_held_buffer_is_bounded_in_bytes_and_overflow_reads_back_from_the_database():
    """While a room is behind, the frames it holds stay under HELD_BYTES; past it they are dropped and the
    backfill reads them from the backlog instead: every event still arrives once, in order."""
    size = 100 * 1024
    count = HELD_BYTES // size * 3
    backlog = Backlog({7: {s: data(s, size) for s in range(1, count + 2)}})
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    c = FakeConn()
    room.members[c] = 1
    peak = 0
    for seq in range(3, count + 2):  # 2 is lost: everything after it is held
        hub.accept(room, seq, frame(seq, size=size))
        peak = max(peak, room.held_bytes)
        assert room.held_bytes == sum(len(f.json) for f in room.held.values())
    assert peak <= HELD_BYTES and room.dropped > 0
    await settle(hub)
    assert c.seqs() == list(range(2, count + 2))
    assert room.held_bytes == 0 and room.dropped == 0 and not room.behind


async def test_unfilled_gap_backs_off_exponentially_and_resets_once_filled():
    """A gap the backlog does not show yet (its head still at the room's seq) is re-read after 50 ms, 100 ms,
    … doubling up to BACKOFF_MAX (not at a fixed rate); once the missing events appear they are delivered
    and the next back-off starts again at 50 ms."""
    backlog = Backlog({7: {1: data(1), 2: data(2)}})  # 3 and 4 are not readable (yet)
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 2)
    c = FakeConn()
    room.members[c] = 2

    def on_nap(n: int) -> None:
        if n == 9:
            backlog.events[7][3] = data(3)
            backlog.events[7][4] = data(4)

    clock.on_nap = on_nap
    hub.accept(room, 4, frame(4))
    await settle(hub)
    expected = [BACKOFF_FIRST * 2 ** i for i in range(6)]
    assert clock.naps == [min(d, BACKOFF_MAX) for d in expected] + [BACKOFF_MAX] * 3
    assert len(backlog.queries) == 10  # one read per back-off step, no busy loop between
    assert c.seqs() == [3, 4] and room.delay == BACKOFF_FIRST and not room.behind


async def test_pool_timeout_during_backfill_backs_off_and_delivers_once_the_pool_answers():
    """A pool acquire that times out in the backfill is handled like the database being down: the held
    frame stays, the read is retried with back-off, and everything arrives when the pool answers."""
    backlog = Backlog({7: {s: data(s) for s in range(1, 5)}})
    backlog.down = TimeoutError()
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    c = FakeConn()
    room.members[c] = 1

    def on_nap(n: int) -> None:
        if n == 3:
            backlog.down = None

    clock.on_nap = on_nap
    hub.accept(room, 4, frame(4))
    await settle(hub)
    assert clock.naps == [0.05, 0.1, 0.2]
    assert c.seqs() == [2, 3, 4] and not room.held


async def test_join_with_pool_timeout_raises_and_leaves_no_half_made_room():
    """A join whose pool acquire times out raises (ws.py answers `unavailable`) and leaves no room behind,
    so the next subscribe tries again from scratch."""
    backlog = Backlog({7: {1: data(1)}})
    backlog.down = TimeoutError()
    hub = Hub(backlog, MemoryBroker())  # type: ignore[arg-type]
    with pytest.raises(TimeoutError):
        await hub.join(FakeConn(), 7, None)
    assert 7 not in hub.rooms
    backlog.down = None
    _, target, reset, _ = await hub.join(FakeConn(), 7, None)
    assert target == 1 and not reset and backlog.timeouts == [hub_module.ACQUIRE_TIMEOUT] * 2


async def test_replay_cache_is_bounded_in_bytes_per_room():
    """The per-room replay cache never holds more than RECENT_BYTES (beyond its newest frame), and its
    byte count matches what it holds."""
    room = Room(7)
    for seq in range(1, 200):
        room.remember(seq, frame(seq, size=40 * 1024))
        assert room.recent_bytes == sum(len(f.json) for _, f in room.recent)
        assert room.recent_bytes <= RECENT_BYTES or len(room.recent) == 1
    assert [s for s, _ in room.recent][-1] == 199 and len(room.recent) < 199


async def test_reordered_events_are_delivered_in_seq_order_once_with_one_read():
    """Events arriving 4, 3, 2 (after 1) reach the socket as 2, 3, 4, once each, with one backlog read."""
    backlog = Backlog({7: {s: data(s) for s in range(1, 5)}})
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    c = FakeConn()
    room.members[c] = 1
    for seq in (4, 3, 2):
        hub.accept(room, seq, frame(seq))
    await settle(hub)
    assert c.seqs() == [2, 3, 4] and len(backlog.queries) == 1 and not room.held


async def test_socket_joining_while_its_room_backfills_gets_the_rest_after_its_replay():
    """A socket that joins a room that is behind gets, after its replay up to the join's seq, exactly the
    events the backfill delivered meanwhile: no gap and no duplicate at the seam."""
    backlog = Backlog({7: {s: data(s) for s in range(1, 6)}})
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 2)
    hub.accept(room, 5, frame(5))  # 3 and 4 missing: the room is behind

    async def not_deleted(thread_id: int) -> bool:  # answers at once, so the join lands while it is behind
        return False
    hub._deleted.check = not_deleted  # type: ignore[method-assign]
    joiner = FakeConn()
    replay, target, reset, _ = await hub.join(joiner, 7, 1)
    assert target == 2 and not reset
    await settle(hub)
    hub.go_live(joiner, 7, target)
    assert joiner.seqs() == [3, 4, 5] and room.members[joiner] == 5


async def test_room_dropped_during_its_backfill_gets_nothing_delivered():
    """A room that lingered out while its read was running is left alone when the read answers."""
    backlog = Backlog({7: {s: data(s) for s in range(1, 5)}})
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    c = FakeConn()
    room.members[c] = 1
    backlog.during_fetch = lambda: hub.rooms.pop(7) and hub.behind.pop(7)
    hub.accept(room, 4, frame(4))
    await settle(hub)
    assert c.seqs() == [] and room.seq == 1 and not hub.behind


async def test_joins_to_existing_rooms_ask_whether_the_thread_is_deleted_in_batches():
    """Many sockets joining existing rooms at once cost one or two deleted-checks, not one each."""
    backlog = Backlog({t: {1: data(1)} for t in range(1, 11)})
    hub = Hub(backlog, MemoryBroker())  # type: ignore[arg-type]
    for t in range(1, 11):
        ready_room(hub, 1, tid=t)
    joiners = [FakeConn() for _ in range(200)]
    answers = await asyncio.gather(*(hub.join(c, 1 + i % 10, 1) for i, c in enumerate(joiners)))
    assert all(target == 1 for _, target, _, _ in answers)
    assert 1 <= hub._deleted.queries <= 2


async def test_a_join_after_a_deletion_is_refused_even_while_a_check_is_running():
    """A join that starts while an earlier check is being read waits for a check of its own."""
    from server.errors import NotFound
    backlog = Backlog({7: {1: data(1)}})
    hub = Hub(backlog, MemoryBroker())  # type: ignore[arg-type]
    ready_room(hub, 1)
    deleted = False
    reading = asyncio.Event()
    real_fetch = backlog.fetch

    async def fetch(sql: str, *args: Any) -> list[dict]:
        if "AND deleted" in sql:
            was = deleted
            reading.set()
            await asyncio.sleep(0.01)  # the read takes a moment; the deletion commits meanwhile
            return [{"id": 7}] if was else []
        return await real_fetch(sql, *args)
    backlog.fetch = fetch  # type: ignore[method-assign]
    first = asyncio.create_task(hub.join(FakeConn(), 7, 1))
    await reading.wait()  # the first check is being read, with deleted = False
    deleted = True
    with pytest.raises(NotFound):
        await hub.join(FakeConn(), 7, 1)
    assert (await first)[1] == 1


def kinds(c: FakeConn) -> list[tuple[str, int, bool]]:
    """(type, seq, reset) of every frame a socket was sent, joined writes split."""
    out = []
    for w in c.writes:
        for part in (w.parts or [w]):
            msg = json.loads(part.json)
            out.append((msg["type"], msg["seq"], bool(msg.get("reset"))))
    return out


async def joined_socket(hub: Hub, since: int | None = None) -> tuple[FakeConn, int]:
    """A socket that joined thread 7 (an existing room) and is still replaying: (conn, the join's seq)."""
    async def not_deleted(thread_id: int) -> bool:
        return False
    hub._deleted.check = not_deleted  # type: ignore[method-assign]
    joiner = FakeConn()
    _, target, _, _ = await hub.join(joiner, 7, since)
    return joiner, target


async def test_frames_held_for_a_replaying_socket_are_bounded_and_past_the_bound_it_is_reset():
    """While a socket replays, the live frames held for it stay under PENDING_BYTES; past it nothing more is
    held for it, its `subscribed` carries reset at the room's seq (the client reloads over HTTP), and it
    gets the live frames after that seq: never a stream with a hole."""
    hub = Hub(Backlog({7: {1: data(1)}}), MemoryBroker())  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    joiner, target = await joined_socket(hub)
    size = 100 * 1024
    count = hub_module.PENDING_BYTES // size * 2
    for seq in range(2, 2 + count):  # a hot room while the replay streams
        hub.accept(room, seq, frame(seq, size=size))
        assert room.pending[joiner].bytes <= hub_module.PENDING_BYTES
        assert room.pending[joiner].bytes == sum(len(f.json) for _, f in room.pending[joiner].frames)
    assert hub.cut_off(joiner, 7)  # ws.py stops reading the replay
    seq, reset = hub.seam(joiner, 7, target, False)
    assert (seq, reset) == (room.seq, True) and seq == 1 + count
    hub.accept(room, seq + 1, frame(seq + 1))  # between `subscribed` and go_live: held again
    hub.go_live(joiner, 7, seq)
    hub.accept(room, seq + 2, frame(seq + 2))
    assert kinds(joiner) == [("event", seq + 1, False), ("event", seq + 2, False)]
    assert room.members[joiner] == seq + 2


async def test_socket_cut_off_after_its_subscribed_is_reset_when_it_goes_live():
    """A socket whose held frames pass the bound after its `subscribed` went out (while its presence was
    read) gets a second `subscribed` with reset at the room's seq from go_live, then the frames after it."""
    hub = Hub(Backlog({7: {1: data(1)}}), MemoryBroker())  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    joiner, target = await joined_socket(hub)
    assert hub.seam(joiner, 7, target, False) == (1, False)  # nothing cut off yet: unchanged
    big = hub_module.PENDING_BYTES // 2 + 1
    for seq in (2, 3, 4):
        hub.accept(room, seq, frame(seq, size=big))
    hub.go_live(joiner, 7, target)
    hub.accept(room, 5, frame(5))
    assert kinds(joiner) == [("subscribed", 4, True), ("event", 5, False)]


async def test_held_frames_of_all_rooms_stay_under_the_process_total_and_overflow_reads_back(monkeypatch):
    """Many rooms behind a gap together hold at most HELD_TOTAL bytes (each under HELD_BYTES); a room that
    would pass the total drops its held frames and reads them from the backlog: every socket still gets
    every event once, in order, and nothing stays counted once they caught up."""
    size = 10 * 1024
    per_room = 8
    rooms_n = 20
    backlog = Backlog({tid: {s: data(s, size) for s in range(1, per_room + 3)} for tid in range(1, rooms_n + 1)})
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    total = 5 * per_room * (size + 200)  # room for about five rooms' held frames
    monkeypatch.setattr(hub_module, "HELD_TOTAL", total)
    conns = {}
    for tid in range(1, rooms_n + 1):
        room = ready_room(hub, 1, tid)
        conns[tid] = FakeConn()
        room.members[conns[tid]] = 1
    peak = 0
    for seq in range(3, per_room + 3):  # 2 is lost in every room
        for tid in range(1, rooms_n + 1):
            hub.accept(hub.rooms[tid], seq, frame(seq, tid=tid, size=size))
            assert hub.tally.held == sum(r.held_bytes for r in hub.rooms.values())
            peak = max(peak, hub.tally.held)
    assert peak <= total
    assert any(r.dropped for r in hub.rooms.values())  # some rooms let theirs go...
    assert all(r.held_bytes <= HELD_BYTES for r in hub.rooms.values())
    await settle(hub)
    for tid, c in conns.items():  # ...and read them back: nothing lost
        assert c.seqs() == list(range(2, per_room + 3)), tid
    assert hub.tally.held == 0 and not hub.behind


async def test_pruned_gap_resets_every_socket_once_and_goes_on_from_the_head():
    """A gap whose missing event is pruned (the stored events resume later, or none are left after the
    room's seq) is not retried: each watcher and each replaying socket is reset at the database's head
    after one read, the replay cache is emptied, and the events after the head are delivered."""
    backlog = Backlog({7: {1: data(1), 2: data(2), 5: data(5), 6: data(6)},  # 3 and 4 pruned
                       8: {1: data(1), 2: data(2)}})
    backlog.heads[8] = 6  # 3..6 all pruned
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room7, room8 = ready_room(hub, 2, 7), ready_room(hub, 2, 8)
    c7, c8 = FakeConn(), FakeConn()
    room7.members[c7] = 2
    room8.members[c8] = 2
    room7.remember(2, frame(2))
    joiner, target = await joined_socket(hub, since=1)  # replaying 2 when the room skips the hole
    hub.accept(room7, 7, frame(7))
    hub.accept(room8, 7, frame(7, tid=8))
    await settle(hub)
    assert clock.naps == [] and len([q for q in backlog.queries if "unnest" in q]) == 1  # no back-off loop
    for c in (c7, c8):
        assert kinds(c) == [("subscribed", 6, True), ("event", 7, False)]
    assert room7.seq == room8.seq == 7 and not hub.behind and not room7.held
    assert [s for s, _ in room7.recent] == [7]  # no replay across the hole from memory
    assert hub.cut_off(joiner, 7) and hub.seam(joiner, 7, target, False) == (7, True)


async def test_end_sessions_closes_one_session_or_every_session_before_an_epoch() -> None:
    """userchannel.end_sessions(only=key) closes that session's sockets only; (before=epoch) closes every socket
    of a session made at an older credential epoch, the changer's and a copied cookie's alike, and spares a
    socket already opened at the new epoch; no socket is moved to another session."""
    from server.live import userchannel

    class Capture:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        async def publish(self, channel: str, message: bytes) -> None:
            self.sent.append(message)

    hub = Hub(None, MemoryBroker())  # type: ignore[arg-type]

    def socket(session: str, epoch: int) -> FakeConn:
        c = FakeConn()
        c.user, c.session, c.epoch = {"id": 7, "username": "ada", "display_name": "Ada"}, session, epoch
        hub.by_user.setdefault(7, set()).add(c)
        return c

    laptop, copied, phone, fresh = socket("a", 0), socket("a", 0), socket("b", 0), socket("c", 1)
    broker = Capture()
    await userchannel.end_sessions(broker, Channels(), 7, only="b")  # type: ignore[arg-type]
    hub.on_user_message(7, broker.sent[-1])
    assert (laptop.alive, copied.alive, phone.alive, fresh.alive) == (True, True, False, True)
    await userchannel.end_sessions(broker, Channels(), 7, before=1)  # type: ignore[arg-type]
    hub.on_user_message(7, broker.sent[-1])
    assert (laptop.alive, copied.alive, fresh.alive) == (False, False, True)
    assert (laptop.session, copied.session, fresh.session) == ("a", "a", "c")
