"""The hub's parts (rooms.py ordering and drain, backfill.py gaps, batches and back-off, replay.py subscribe
and its seam) with in-memory sockets, a stand-in pool and an injectable clock (unit tests of logic: nothing
sleeps; the behaviour end to end is covered against real servers in the other live tests)."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import json
from typing import Any

import pytest

from server import metrics
from server.errors import NotFound, Unavailable
from server.live import hub as hub_module
from server.live import rooms as rooms_module
from server.live.backfill import BACKFILL_ROOMS, BACKOFF_FIRST, BACKOFF_MAX
from server.live.broker import MemoryBroker
from server.live.channels import Channels
from server.live.conn import Conn, Frame
from server.live.hub import Hub
from server.live.rooms import CHUNK, HELD_BYTES, PENDING_BYTES, RECENT_BYTES, Room
from server.wire import event_frame


class FakeConn(Conn):
    """A socket that keeps what it is sent and drains at once; `on_drain`, when set, runs at each wait for a
    drain (a replay's pause between chunks: what the room does meanwhile)."""

    __slots__ = ("writes", "on_drain")

    def __init__(self) -> None:
        super().__init__(None, 1 << 20)
        self.writes: list[Frame] = []
        self.on_drain: Any = None

    def send(self, frame: Frame) -> None:
        self.writes.append(frame)

    def close(self, code: int, reason: str = "") -> None:
        self.alive = False

    def pending_bytes(self) -> int:
        return 0

    async def drained(self, level: int, timeout: float = 30.0) -> bool:
        if self.on_drain is not None:
            await self.on_drain()
        return self.alive

    def seqs(self) -> list[int]:
        """The seqs of the events it was sent, joined writes split."""
        return [seq for kind, seq, _ in kinds(self) if kind == "event"]


def kinds(c: FakeConn) -> list[tuple[str, int, bool]]:
    """(type, seq, reset) of every frame a socket was sent, joined writes split."""
    out = []
    for w in c.writes:
        for part in (w.parts or [w]):
            msg = json.loads(part.json)
            out.append((msg["type"], msg["seq"], bool(msg.get("reset"))))
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
        self.gate: asyncio.Event | None = None  # set: every query waits for it (joins pile up meanwhile)

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
        if self.gate is not None:
            await self.gate.wait()
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
        if "clock_timestamp" in sql:  # store.events.recent_frames: a room's recent history, all of it fresh
            tid, after, head, limit, budget = args
            return [{**r, "age": 0.0} for r in self._rows(tid, after, limit, budget) if r["seq"] <= head]
        tid, after, limit, budget = args  # store.events.since
        return self._rows(tid, after, limit, budget)

    async def fetchval(self, sql: str, tid: int) -> Any:  # store.threads.live_seq: nothing here is deleted
        self.queries.append(sql)
        if self.gate is not None:
            await self.gate.wait()
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
    room = hub.rooms.new(tid)
    room.seq = seq
    room.ready = asyncio.get_running_loop().create_future()
    room.ready.set_result(None)
    return room


async def settle(hub: Hub) -> None:
    """Run the backfiller until no room is behind (it never sleeps with the fake clock)."""
    if hub.backfill.task is not None:
        await asyncio.wait_for(hub.backfill.task, 10)


PRESENCE = Frame(b'{"type":"presence","seq":0}')


def greeting(then: Any = None) -> Any:
    """A greet() for subscribe: runs `then` (what happens while the presence is read), returns a frame."""
    async def greet() -> Frame:
        if then is not None and inspect.isawaitable(result := then()):
            await result
        return PRESENCE
    return greet


def not_deleted(hub: Hub) -> None:
    """Joins to existing rooms get their deleted-check answered at once (no read)."""
    async def check(thread_id: int) -> bool:
        return False
    hub.subscriptions.deleted.check = check  # type: ignore[method-assign]


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
        hub.rooms.accept(room, seq, frame(seq))
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
    hub.rooms.accept(room, 5, frame(5))      # 3 and 4 are missing
    hub.rooms.accept(room, 2, frame(2))      # old: dropped
    await settle(hub)
    hub.rooms.accept(room, 4, frame(4))      # arrives after the backfill: duplicate
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
        hub.rooms.accept(hub.rooms.by_thread[1], head + 1, frame(head + 1, tid=1))
        backlog.during_fetch = None

    backlog.during_fetch = live_frame_meanwhile
    hub.on_reconnect()
    await settle(hub)
    batched = [q for q in backlog.queries if "unnest" in q]
    assert len(batched) == 2 and len(backlog.queries) == 2  # ceil(n / BACKFILL_ROOMS), nothing per room
    for tid, c in conns.items():
        assert c.seqs() == list(range(2, backlog.head(tid) + 1)), tid
    assert conns[1].seqs()[-1] == 5 and not hub.backfill.behind


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
        hub.rooms.accept(room, seq, frame(seq, size=size))
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
    hub.rooms.accept(room, 4, frame(4))
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
    hub.rooms.accept(room, 4, frame(4))
    await settle(hub)
    assert clock.naps == [0.05, 0.1, 0.2]
    assert c.seqs() == [2, 3, 4] and not room.held


async def test_join_with_pool_timeout_raises_and_leaves_no_half_made_room():
    """A subscribe whose pool acquire times out raises `unavailable` (ws.py's error frame), sends nothing and
    leaves no room behind, so the next subscribe tries again from scratch."""
    backlog = Backlog({7: {1: data(1)}})
    backlog.down = TimeoutError()
    hub = Hub(backlog, MemoryBroker())  # type: ignore[arg-type]
    failed = FakeConn()
    with pytest.raises(Unavailable):
        await hub.subscribe(failed, 7, None)
    assert 7 not in hub.rooms.by_thread and failed.writes == [] and not failed.rooms
    backlog.down = None
    joiner = FakeConn()
    await hub.subscribe(joiner, 7, None)
    assert kinds(joiner) == [("subscribed", 1, False)] and backlog.timeouts == [hub_module.ACQUIRE_TIMEOUT] * 2


def resumes(source: str) -> float:
    return metrics.HISTORY_RESUMES.labels(source)._value.get()


async def test_a_thousand_joins_into_a_cold_room_share_its_one_history_read():
    """1,000 sockets resuming at once into a room this process has not opened: ONE read of its seq and one of
    its recent history (not one per socket), every socket replayed from memory, none from the database."""
    backlog = Backlog({7: {s: data(s) for s in range(1, 6)}})
    backlog.gate = asyncio.Event()
    hub = Hub(backlog, MemoryBroker())  # type: ignore[arg-type]
    memory, database = resumes("memory"), resumes("database")
    conns = [FakeConn() for _ in range(1000)]
    joins = asyncio.gather(*(hub.subscribe(c, 7, 2) for c in conns))
    for _ in range(20):  # every join starts and waits while the room's first read is held at the gate
        await asyncio.sleep(0)
    backlog.gate.set()
    await asyncio.wait_for(joins, 10)
    assert sum("clock_timestamp" in q for q in backlog.queries) == 1  # the recent history, read once
    assert sum("SELECT seq FROM threads WHERE id = $1" in q for q in backlog.queries) == 1  # its seq, read once
    assert sum("AND deleted" in q for q in backlog.queries) <= 2  # the joiners' deleted check, batched
    assert all(kinds(c)[-1] == ("subscribed", 5, False) and c.seqs() == [3, 4, 5] for c in conns)
    assert resumes("memory") - memory == 1000 and resumes("database") == database


async def test_history_past_its_age_or_count_is_read_from_the_database_without_a_gap():
    """A resume further back than the recent history's count, or into events older than its age bound, reads
    thread_events (counted as database) and still gets every event once; one within both is from memory."""
    clock = Clock()
    backlog = Backlog({7: {s: data(s) for s in range(1, 11)}})
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep,  # type: ignore[arg-type]
              history_events=4, history_seconds=60)
    not_deleted(hub)
    first = FakeConn()
    await hub.subscribe(first, 7, None)
    assert [s for s, _ in hub.rooms.by_thread[7].recent] == [7, 8, 9, 10]
    memory, database = resumes("memory"), resumes("database")
    near, far = FakeConn(), FakeConn()
    await hub.subscribe(near, 7, 6)   # 7..10: all in memory
    await hub.subscribe(far, 7, 3)    # 4..10: 4..6 are past the count
    assert near.seqs() == [7, 8, 9, 10] and far.seqs() == [4, 5, 6, 7, 8, 9, 10]
    assert resumes("memory") - memory == 1 and resumes("database") - database == 1
    clock.now += 61  # the history ages out: the same near resume now reads the database
    late = FakeConn()
    await hub.subscribe(late, 7, 6)
    assert late.seqs() == [7, 8, 9, 10] and resumes("database") - database == 2
    assert not hub.rooms.by_thread[7].recent and hub.rooms.recent_total == 0
    backlog.events[7][11] = data(11)
    hub.rooms.accept(hub.rooms.by_thread[7], 11, frame(11))  # a new event is history again
    again = FakeConn()
    await hub.subscribe(again, 7, 10)
    assert again.seqs() == [11] and resumes("memory") - memory == 2


async def test_a_room_warmed_with_an_old_event_between_fresh_ones_keeps_only_what_follows_it():
    """Commit times need not rise with seq: the warm read keeps only the events after the last one past the age
    bound, so the history never has a hole (6 is fresh but 7 is old: only 8 is kept)."""
    hub = Hub(None, MemoryBroker(), history_seconds=300)  # type: ignore[arg-type]
    room = ready_room(hub, 8)
    hub.rooms.warm(room, [(5, frame(5).json, 400.0), (6, frame(6).json, 10.0), (7, frame(7).json, 400.0),
                          (8, frame(8).json, 5.0)])
    assert [s for s, _ in room.recent] == [8]
    assert hub.rooms.history_from(room, 5, 8) is None and hub.rooms.history_from(room, 7, 8) is not None


async def test_quiet_rooms_let_go_of_history_past_its_age_in_the_reconcile_round():
    """expire_all (the reconcile round) drops every room's frames older than the age bound and their bytes
    from the process total; newer frames stay."""
    clock = Clock()
    hub = Hub(None, MemoryBroker(), clock=clock, history_seconds=30)  # type: ignore[arg-type]
    quiet, busy = ready_room(hub, 0, 1), ready_room(hub, 0, 2)
    hub.rooms.accept(quiet, 1, frame(1, 1))
    hub.rooms.accept(busy, 1, frame(1, 2))
    clock.now += 20
    hub.rooms.accept(busy, 2, frame(2, 2))
    clock.now += 15
    hub.rooms.expire_all()
    assert not quiet.recent and [s for s, _ in busy.recent] == [2]
    assert hub.rooms.recent_total == quiet.recent_bytes + busy.recent_bytes == len(frame(2, 2).json)


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
        hub.rooms.accept(room, seq, frame(seq))
    await settle(hub)
    assert c.seqs() == [2, 3, 4] and len(backlog.queries) == 1 and not room.held


async def test_socket_joining_while_its_room_backfills_gets_the_rest_after_its_replay():
    """A socket that joins a room that is behind gets its replay up to the join's seq, `subscribed` at it,
    its greeting, then exactly the events the backfill delivered meanwhile: no gap and no duplicate at the
    seam."""
    backlog = Backlog({7: {s: data(s) for s in range(1, 6)}})
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 2)
    hub.rooms.accept(room, 5, frame(5))  # 3 and 4 missing: the room is behind
    not_deleted(hub)  # answers at once, so the join lands while the room is behind
    joiner = FakeConn()
    await hub.subscribe(joiner, 7, 1, greeting(lambda: settle(hub)))  # the backfill runs while it is greeted
    assert kinds(joiner) == [("event", 2, False), ("subscribed", 2, False), ("presence", 0, False),
                             ("event", 3, False), ("event", 4, False), ("event", 5, False)]
    assert room.members[joiner] == 5


async def test_room_dropped_during_its_backfill_gets_nothing_delivered():
    """A room that lingered out while its read was running is left alone when the read answers."""
    backlog = Backlog({7: {s: data(s) for s in range(1, 5)}})
    clock = Clock()
    hub = Hub(backlog, MemoryBroker(), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    c = FakeConn()
    room.members[c] = 1
    backlog.during_fetch = lambda: hub.rooms.by_thread.pop(7) and hub.backfill.behind.pop(7)
    hub.rooms.accept(room, 4, frame(4))
    await settle(hub)
    assert c.seqs() == [] and room.seq == 1 and not hub.backfill.behind


async def test_joins_to_existing_rooms_ask_whether_the_thread_is_deleted_in_batches():
    """Many sockets joining existing rooms at once cost one or two deleted-checks, not one each."""
    backlog = Backlog({t: {1: data(1)} for t in range(1, 11)})
    hub = Hub(backlog, MemoryBroker())  # type: ignore[arg-type]
    for t in range(1, 11):
        ready_room(hub, 1, tid=t)
    joiners = [FakeConn() for _ in range(200)]
    await asyncio.gather(*(hub.subscribe(c, 1 + i % 10, 1) for i, c in enumerate(joiners)))
    assert all(kinds(c) == [("subscribed", 1, False)] for c in joiners)
    assert 1 <= hub.subscriptions.deleted.queries <= 2


async def test_a_join_after_a_deletion_is_refused_even_while_a_check_is_running():
    """A join that starts while an earlier check is being read waits for a check of its own."""
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
    early = FakeConn()
    first = asyncio.create_task(hub.subscribe(early, 7, 1))
    await reading.wait()  # the first check is being read, with deleted = False
    deleted = True
    late = FakeConn()
    with pytest.raises(NotFound):
        await hub.subscribe(late, 7, 1)
    await first
    assert kinds(early) == [("subscribed", 1, False)] and late.writes == [] and not late.rooms


async def test_frames_held_for_a_replaying_socket_are_bounded_and_past_the_bound_it_is_reset():
    """While a socket replays, the live frames held for it stay under PENDING_BYTES; past it nothing more is
    held for it, the rest of its replay is not read, its `subscribed` carries reset at the room's seq (the
    client reloads over HTTP), and it gets the live frames after that seq: never a stream with a hole."""
    backlog = Backlog({7: {s: data(s, 200 * 1024) for s in (1, 2, 3)}})  # two reads of a 256 KiB chunk
    hub = Hub(backlog, MemoryBroker())  # type: ignore[arg-type]
    room = ready_room(hub, 3)
    not_deleted(hub)
    joiner = FakeConn()
    size = 100 * 1024
    count = PENDING_BYTES // size * 2
    head = 3 + count

    async def hot_room() -> None:  # live frames while the first chunk drains
        joiner.on_drain = None
        for seq in range(4, head + 1):
            hub.rooms.accept(room, seq, frame(seq, size=size))
            assert room.pending[joiner].bytes <= PENDING_BYTES
            assert room.pending[joiner].bytes == sum(len(f.json) for _, f in room.pending[joiner].frames)

    joiner.on_drain = hot_room
    # Between `subscribed` and going live (its presence read), the next frame is held again.
    await hub.subscribe(joiner, 7, 0, greeting(lambda: hub.rooms.accept(room, head + 1, frame(head + 1))))
    hub.rooms.accept(room, head + 2, frame(head + 2))
    assert kinds(joiner) == [("event", 1, False), ("event", 2, False), ("subscribed", head, True),
                             ("presence", 0, False), ("event", head + 1, False), ("event", head + 2, False)]
    assert room.members[joiner] == head + 2 and len(backlog.queries) == 1  # event 3 was never read


async def test_socket_cut_off_after_its_subscribed_is_reset_when_it_goes_live():
    """A socket whose held frames pass the bound after its `subscribed` went out (while its presence was
    read) gets a second `subscribed` with reset at the room's seq when it goes live, then the frames after it."""
    hub = Hub(Backlog({7: {1: data(1)}}), MemoryBroker())  # type: ignore[arg-type]
    room = ready_room(hub, 1)
    not_deleted(hub)
    joiner = FakeConn()
    big = PENDING_BYTES // 2 + 1

    def hot_room() -> None:
        for seq in (2, 3, 4):
            hub.rooms.accept(room, seq, frame(seq, size=big))

    await hub.subscribe(joiner, 7, None, greeting(hot_room))
    hub.rooms.accept(room, 5, frame(5))
    assert kinds(joiner) == [("subscribed", 1, False), ("presence", 0, False), ("subscribed", 4, True),
                             ("event", 5, False)]


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
    monkeypatch.setattr(rooms_module, "HELD_TOTAL", total)
    conns = {}
    for tid in range(1, rooms_n + 1):
        room = ready_room(hub, 1, tid)
        conns[tid] = FakeConn()
        room.members[conns[tid]] = 1
    peak = 0
    for seq in range(3, per_room + 3):  # 2 is lost in every room
        for tid in range(1, rooms_n + 1):
            hub.rooms.accept(hub.rooms.by_thread[tid], seq, frame(seq, tid=tid, size=size))
            assert hub.rooms.tally.held == sum(r.held_bytes for r in hub.rooms.by_thread.values())
            peak = max(peak, hub.rooms.tally.held)
    assert peak <= total
    assert any(r.dropped for r in hub.rooms.by_thread.values())  # some rooms let theirs go...
    assert all(r.held_bytes <= HELD_BYTES for r in hub.rooms.by_thread.values())
    await settle(hub)
    for tid, c in conns.items():  # ...and read them back: nothing lost
        assert c.seqs() == list(range(2, per_room + 3)), tid
    assert hub.rooms.tally.held == 0 and not hub.backfill.behind


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
    not_deleted(hub)
    joiner = FakeConn()

    async def skip_the_hole() -> None:  # while the joiner replays 1 and 2 (from the backlog: the cache has 2 only)
        joiner.on_drain = None
        hub.rooms.accept(room7, 7, frame(7))
        hub.rooms.accept(room8, 7, frame(7, tid=8))
        await settle(hub)

    joiner.on_drain = skip_the_hole
    await hub.subscribe(joiner, 7, 0)
    assert clock.naps == [] and len([q for q in backlog.queries if "unnest" in q]) == 1  # no back-off loop
    for c in (c7, c8):
        assert kinds(c) == [("subscribed", 6, True), ("event", 7, False)]
    assert room7.seq == room8.seq == 7 and not hub.backfill.behind and not room7.held
    assert [s for s, _ in room7.recent] == [7]  # no replay across the hole from memory
    assert kinds(joiner) == [("event", 1, False), ("event", 2, False), ("subscribed", 7, True)]


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
        hub.users.by_user.setdefault(7, set()).add(c)
        return c

    laptop, copied, phone, fresh = socket("a", 0), socket("a", 0), socket("b", 0), socket("c", 1)
    broker = Capture()
    await userchannel.end_sessions(broker, Channels(), 7, only="b")  # type: ignore[arg-type]
    hub.users.on_message(7, broker.sent[-1])
    assert (laptop.alive, copied.alive, phone.alive, fresh.alive) == (True, True, False, True)
    await userchannel.end_sessions(broker, Channels(), 7, before=1)  # type: ignore[arg-type]
    hub.users.on_message(7, broker.sent[-1])
    assert (laptop.alive, copied.alive, fresh.alive) == (False, False, True)
    assert (laptop.session, copied.session, fresh.session) == ("a", "a", "c")
