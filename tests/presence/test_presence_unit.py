"""Fast unit layer for server/live/presence*.py: an injected clock, a fake hub, Redis at REDIS_URL.

No `parley serve` here: Presence objects are driven directly (two of them on one
Redis stand for two processes), under a namespace of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from server.live.channels import Channels
from server.live.presence import TOP, Presence, decode_cursor, encode_cursor, name_key
from support.clock import Clock


class FakeConn:
    def __init__(self) -> None:
        self.alive = True
        self.rooms: set[int] = set()
        self.frames: list[dict[str, Any]] = []

    def send(self, frame: Any) -> None:
        self.frames.append(json.loads(frame.json))


class FakeHub:
    def __init__(self) -> None:
        self.conns: list[FakeConn] = []

    def watching(self, scope: Any) -> list[FakeConn]:
        return [c for c in self.conns if scope in c.rooms]

    def has_watchers(self, scope: Any) -> bool:
        return bool(self.watching(scope))


def brief(i: int, name: str | None = None) -> dict[str, Any]:
    return {"id": i, "username": f"u{i}", "display_name": name or f"User {i}"}


def local(clock: Clock | None = None, grace: float = 15.0) -> Presence:
    return Presence(FakeHub(), None, grace, 30.0, clock=clock or Clock(), coalesce=0.01, flush=0.01)


@pytest.fixture()
async def redis() -> Any:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    r = aioredis.Redis.from_url(url)
    try:
        await r.ping()
    except Exception:
        pytest.skip("no Redis at REDIS_URL")
    yield r
    await r.aclose()


def pair(redis: Any, clock: Clock | None = None) -> tuple[Presence, Presence]:
    ns = f"ptest:{uuid.uuid4().hex[:8]}"
    clock = clock or Clock()
    return tuple(Presence(FakeHub(), redis, 15.0, 30.0, Channels(ns), clock=clock, coalesce=0.01, flush=0.01)
                 for _ in range(2))  # type: ignore[return-value]


async def drop_namespace(redis: Any, p: Presence) -> None:
    keys = [k async for k in redis.scan_iter(f"{p.channels.namespace}:*")]
    if keys:
        await redis.delete(*keys)


async def all_pages(p: Presence, scope: Any, limit: int) -> list[int]:
    got: list[int] = []
    after = None
    while True:
        page = await p.page(scope, limit, after)
        got += [u["id"] for u in page["users"]]
        if page["next"] is None:
            return got
        after = decode_cursor(page["next"])


async def test_in_process_frame_lists_50_newest_first_and_counts_all() -> None:
    """Without Redis, 60 arrivals: the frame lists the 50 newest, newest first, with count 60."""
    p = local()
    for i in range(1, 61):
        p.add("site", brief(i))
    users, count, guests = await p.snapshot("site")
    assert [u["id"] for u in users] == list(range(60, 10, -1))
    assert count == 60 and guests == 0
    frame = json.loads((await p.frame("site")).json)
    assert len(frame["users"]) == TOP and frame["count"] == 60 and frame["users"][0]["id"] == 60


async def test_in_process_grace_with_an_injected_clock() -> None:
    """A user whose last socket closed stays listed until the grace period ends on the injected clock."""
    clock = Clock()
    p = local(clock)
    p.add("site", brief(1))
    p.remove("site", brief(1))
    clock.now += 14.9
    p.sweep_once()
    assert (await p.snapshot("site"))[1] == 1
    p.add("site", brief(1))  # back within the grace period: nothing changes, the grace is cancelled
    p.remove("site", brief(1))
    clock.now += 14.9
    p.sweep_once()
    assert (await p.snapshot("site"))[1] == 1
    clock.now += 0.2
    p.sweep_once()
    assert (await p.snapshot("site"))[1] == 0


async def test_in_process_rejoin_within_grace_keeps_arrival_order() -> None:
    """A reload within the grace period does not make a user the newest arrival (no reshuffle)."""
    clock = Clock()
    p = local(clock)
    for i in (1, 2, 3):
        p.add("site", brief(i))
    p.remove("site", brief(1))
    clock.now += 5
    p.sweep_once()
    p.add("site", brief(1))
    assert [u["id"] for u in (await p.snapshot("site"))[0]] == [3, 2, 1]


async def test_in_process_paging_by_name_exactly_once() -> None:
    """Paging 23 users (with repeated display names) by 4 lists each once, in display-name order."""
    p = local()
    names = ["bob", "Alice", "alice", "Zoë", "carol", "Bob"]
    for i in range(1, 24):
        p.add("site", brief(i, names[i % len(names)]))
    got = await all_pages(p, "site", 4)
    assert sorted(got) == list(range(1, 24))
    order = [name_key(brief(i, names[i % len(names)])) for i in got]
    assert order == sorted(order)
    assert (await p.page("site", 4))["count"] == 23


def test_cursor_round_trip_and_forgery() -> None:
    """A `next` cursor decodes back to its member; anything else is refused."""
    member = name_key(brief(42, "Zoë Ünïcode"))
    assert decode_cursor(encode_cursor(member)) == member
    for bad in ("", "abc", encode_cursor("no separator"), encode_cursor("x\x00123")):
        with pytest.raises(ValueError):
            decode_cursor(bad)


async def test_coalescing_keeps_one_timer_per_scope() -> None:
    """Many changes within one interval leave a single pending recompute (one frame) for the scope."""
    clock = Clock()
    p = local(clock)
    view = p.views.view("site")
    view.ran_at, view.interval = clock.now, 1.0
    for i in range(1, 30):
        p.add("site", brief(i))
    timer = view.timer
    assert timer is not None
    for i in range(30, 40):
        p.add("site", brief(i))
    assert view.timer is timer
    timer.cancel()


async def test_two_processes_list_a_user_once_and_keep_the_count(redis: Any) -> None:
    """One user held by two processes is counted once, and stays until the last lets go."""
    a, b = pair(redis)
    try:
        a.add("site", brief(1))
        b.add("site", brief(1))
        b.add("site", brief(2))
        await a.sync()
        await b.sync()
        assert (await a.page("site"))["count"] == 2
        a.remove("site", brief(1), linger=False)
        await a.sync()
        assert sorted(u["id"] for u in (await a.page("site"))["users"]) == [1, 2]
        b.remove("site", brief(1), linger=False)
        await b.sync()
        page = await a.page("site")
        assert page["count"] == 1 and [u["id"] for u in page["users"]] == [2]
    finally:
        await drop_namespace(redis, a)


async def test_shared_view_is_bounded_and_newest_first(redis: Any) -> None:
    """With 301 users over two processes, a read brings 50 briefs, newest first, and count 301, on both."""
    a, b = pair(redis)
    try:
        for i in range(1, 301, 2):
            a.add("site", brief(i))
        await a.sync()
        for i in range(2, 301, 2):
            b.add("site", brief(i))
        await b.sync()
        b.add("site", brief(301))
        await b.sync()
        for p in (a, b):  # both processes read the same order: b's batch after a's, then the newest
            view = p.views.view("site")
            await p.views.refresh("site", view)
            assert view.count == 301 and len(view.top or []) == TOP
            assert [u["id"] for u in view.top or []][:4] == [301, 300, 298, 296]
        got = await all_pages(b, "site", 200)
        assert sorted(got) == list(range(1, 302))
    finally:
        await drop_namespace(redis, a)


async def test_a_pending_arrival_is_shown_first_before_it_is_read_back(redis: Any) -> None:
    """A socket's own join frame lists its user first even before the write reached Redis."""
    a, _ = pair(redis)
    try:
        for i in range(1, 61):
            a.add("site", brief(i))
        await a.sync()
        await a.views.refresh("site", a.views.view("site"))
        a.add("site", brief(99))  # not flushed yet
        users, count, _ = await a.snapshot("site")
        assert users[0]["id"] == 99 and count == 61 and len(users) == TOP
    finally:
        await drop_namespace(redis, a)


async def test_writes_are_idempotent_when_retried(redis: Any) -> None:
    """Writing a process's whole part again (a retried flush, a reconnect) changes no count."""
    a, b = pair(redis)
    try:
        for i in range(1, 11):
            a.add("site", brief(i))
            b.add("site", brief(i))
        a.add("site", None)
        await a.sync()
        await b.sync()
        for _ in range(2):
            a.counts.scopes["site"].rewrite = True
            a.shared.queue_flush("site", 0)  # type: ignore[union-attr]
            await a.sync()
        page = await b.page("site")
        assert page["count"] == 10 and page["guests"] == 1
        assert await redis.hget(f"{a.channels.namespace}:pr:{{site}}:r", "1") == b"2"
    finally:
        await drop_namespace(redis, a)


async def test_reaping_a_dead_process_removes_only_what_nobody_else_holds(redis: Any) -> None:
    """When A's lease runs out, B reaps it: A's own users and guests go, shared users stay."""
    clock = Clock()
    a, b = pair(redis, clock)
    try:
        a.add("site", brief(1))
        a.add("site", brief(2))
        a.add("site", None)
        a.add(7, brief(1))
        b.add("site", brief(2))
        await a.sync()
        await b.sync()
        assert (await b.page("site"))["count"] == 2
        assert a.shared is not None and b.shared is not None
        await redis.zadd(a.shared.procs_key, {a.shared.proc: 1.0})  # A "died": its lease ran out long ago
        await b.shared.beat()
        for t in list(b.tasks):
            if t.get_name() == "presence-reap":
                await t
        page = await b.page("site")
        assert [u["id"] for u in page["users"]] == [2] and page["count"] == 1 and page["guests"] == 0
        assert (await b.page(7))["count"] == 0
        assert await redis.zscore(a.shared.procs_key, a.shared.proc) is None
        a.tasks.clear()
    finally:
        await drop_namespace(redis, a)


async def test_a_process_reaped_while_alive_writes_itself_back(redis: Any) -> None:
    """If A is reaped by mistake (a long stall), its next heartbeat notices and writes its part again."""
    a, b = pair(redis)
    try:
        a.add("site", brief(1))
        await a.sync()
        assert a.shared is not None and b.shared is not None
        await b.shared.reap(a.shared.proc, {"site"})
        assert (await b.page("site"))["count"] == 0
        await a.shared.beat()
        await a.sync()
        assert (await b.page("site"))["count"] == 1
    finally:
        await drop_namespace(redis, a)


async def test_no_broadcast_reaches_a_socket_before_its_join_frame() -> None:
    """A socket registered in the hub hears nothing of a scope until it has had its join frame (hello first)."""

    p = local()
    conn = FakeConn()
    p.watchers.conns.append(conn)  # type: ignore[attr-defined]
    p.add("site", brief(1))
    await asyncio.sleep(0.2)  # the recompute (coalesce 0.01 s) has run
    assert conn.frames == []
    conn.send(await p.frame("site", conn))
    p.add("site", brief(2))
    for _ in range(50):
        await asyncio.sleep(0.05)
        if len(conn.frames) > 1:
            break
    assert [f["count"] for f in conn.frames] == [1, 2]


def test_the_coalescing_interval_stretches_with_bytes_and_with_sends_up_to_its_cap() -> None:
    """1 s for a small room; longer past the byte budget (big frames) or the send budget (many sockets,
    small frames); never beyond MAX_COALESCE."""
    from server.live.presence_view import COALESCE, FANOUT_BUDGET, FANOUT_SENDS, MAX_COALESCE, interval
    assert interval(200, 100) == COALESCE
    assert interval(4096, 8192) == 4096 * 8192 / FANOUT_BUDGET > COALESCE
    assert interval(120, 3 * FANOUT_SENDS) == 3.0
    assert interval(120, 1000 * FANOUT_SENDS) == MAX_COALESCE


async def test_a_guest_joining_patches_the_count_of_the_frame_without_composing_it() -> None:
    """A guest's arrival changes only the frame's guest count (no compose, no encode of the users), and the
    patched frame says exactly what a freshly composed one says."""
    p = local()
    for i in range(1, 4):
        p.add("site", brief(i))
    await p.frame("site")
    composed = 0
    compose = p.views.compose

    def counting(scope: Any, view: Any) -> Any:
        nonlocal composed
        composed += 1
        return compose(scope, view)
    p.views.compose = counting  # type: ignore[method-assign]
    for n in range(1, 4):
        p.add("site", None)
        patched = json.loads((await p.frame("site")).json)
        assert patched["guests"] == n
    assert composed == 0
    p.views.changed("site")  # as if someone came: composed and encoded afresh
    assert json.loads((await p.frame("site")).json) == patched and composed == 1


def test_a_guest_count_alone_is_broadcast_less_often_in_a_big_scope() -> None:
    """Guest-only changes: 1 s up to GUEST_SENDS sockets, then one send per socket per sockets/GUEST_SENDS s,
    never beyond MAX_COALESCE."""
    from server.live.presence_view import COALESCE, GUEST_SENDS, MAX_COALESCE, guest_interval
    assert guest_interval(10) == COALESCE
    assert guest_interval(5 * GUEST_SENDS) == 5.0
    assert guest_interval(100 * GUEST_SENDS) == MAX_COALESCE
