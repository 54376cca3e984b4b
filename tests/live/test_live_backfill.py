"""Backfill against real parts: a broker outage with many rooms on one process, a gap whose event was pruned,
and the pool timeout on the live path."""

from __future__ import annotations

import asyncio
import math
import time

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from server.errors import NotFound, Unavailable
from server.live import hub as hub_module
from server.live.broker import MemoryBroker
from server.live.conn import Conn
from server.live.hub import Hub
from support.api import Api, new_thread, unique
from support.databases import make_moderator

ROOMS = 40
REPLIES = 3


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return float(next(x for x in text.splitlines() if x.startswith(name + " ")).split()[-1])


async def test_many_rooms_after_a_broker_outage_get_every_reply_in_order_from_batched_reads(
        spawn, pg_url, own_redis, watchers):
    """40 rooms watched on one process; Redis goes away while another process posts replies to all of them;
    once it is back every reply arrives in seq order, exactly once, and the watching process read them with
    a handful of batched queries (one for the reconnect, at most one per 5 s reconcile tick), not one per room."""
    a = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    b = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    mod = Api(a.url).sign_up()
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Storm"}).status_code == 201
    tids = [new_thread(mod, slug, title=f"Storm {i}")["thread"]["id"] for i in range(ROOMS)]
    w = await watchers(a.ws_url)
    for tid in tids:
        assert (await w.subscribe(tid))["type"] == "subscribed"
    queries_before = metric(a.url, "parley_backfill_queries_total")
    reconnects_before = metric(a.url, "parley_broker_reconnects_total")

    poster = httpx.AsyncClient(base_url=b.url, cookies=Api(b.url).sign_up().http.cookies, timeout=30)
    began = time.monotonic()
    own_redis.stop()
    statuses = []
    for n in range(REPLIES):  # round-robin: every room misses REPLIES events while the broker is gone
        rs = await asyncio.gather(*(poster.post(f"/api/threads/{tid}/posts", json={"body": f"missed {n}"})
                                    for tid in tids))
        statuses += [r.status_code for r in rs]
    own_redis.start()
    assert set(statuses) == {201}

    for tid in tids:
        await w.wait_seq(tid, 1 + REPLIES, timeout=30)
    outage = time.monotonic() - began
    await poster.aclose()
    for tid in tids:
        assert w.seqs(tid) == list(range(2, 2 + REPLIES)), tid
    deadline = time.monotonic() + 20
    while metric(a.url, "parley_broker_reconnects_total") <= reconnects_before:
        assert time.monotonic() < deadline, "the watching process never reconnected"
        await asyncio.sleep(0.2)
    queries = metric(a.url, "parley_backfill_queries_total") - queries_before
    ticks = math.ceil(outage / hub_module.RECONCILE_EVERY) + 1
    assert 1 <= queries <= 1 + ticks and queries < ROOMS, (queries, outage)


async def test_subscriber_connections_killed_mid_stream_lose_and_double_nothing(spawn, pg_url, own_redis, watchers):
    """Redis drops the subscriber connections (CLIENT KILL TYPE pubsub) three times while replies stream into
    ten rooms from another process: each room still gets every seq once, in order (the frames that came
    during a reconnect's backfill were held and followed it)."""
    a = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    b = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    mod = Api(a.url).sign_up()
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Kills"}).status_code == 201
    tids = [new_thread(mod, slug, title=f"Kill {i}")["thread"]["id"] for i in range(10)]
    w = await watchers(a.ws_url)
    for tid in tids:
        assert (await w.subscribe(tid))["type"] == "subscribed"
    reconnects_before = metric(a.url, "parley_broker_reconnects_total")
    poster = httpx.AsyncClient(base_url=b.url, cookies=Api(b.url).sign_up().http.cookies, timeout=30)
    rounds = 12

    async def post() -> None:
        for n in range(rounds):
            rs = await asyncio.gather(*(poster.post(f"/api/threads/{tid}/posts", json={"body": f"r{n}"})
                                        for tid in tids))
            assert {r.status_code for r in rs} == {201}

    async def kill() -> None:
        client = aioredis.from_url(own_redis.url)
        try:
            for _ in range(3):
                await asyncio.sleep(0.3)
                await client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        finally:
            await client.aclose()

    await asyncio.gather(post(), kill())
    await poster.aclose()
    for tid in tids:
        await w.wait_seq(tid, 1 + rounds, timeout=30)
        assert w.seqs(tid) == list(range(2, 2 + rounds)), tid
    assert metric(a.url, "parley_broker_reconnects_total") > reconnects_before


async def test_join_waits_for_a_pooled_connection_at_most_the_acquire_timeout(pg_url, monkeypatch):
    """With every pooled connection taken, a subscribe gives up after ACQUIRE_TIMEOUT with `unavailable`
    (ws.py's error frame) instead of queueing forever, and leaves no half-made room."""
    monkeypatch.setattr(hub_module, "ACQUIRE_TIMEOUT", 0.3)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=1)
    try:
        hub = Hub(pool, MemoryBroker())
        conn = Conn(None, 1 << 20)
        async with pool.acquire():  # the only connection is busy
            with pytest.raises(Unavailable):
                await asyncio.wait_for(hub.subscribe(conn, 1, None), 10)
        assert not hub.rooms.by_thread
        with pytest.raises(NotFound):  # the pool is free again: the join reaches the database
            await hub.subscribe(conn, -1, None)
    finally:
        await pool.close()


async def test_a_gap_whose_event_was_pruned_resets_the_watchers_and_live_delivery_goes_on(spawn, pg_url, watchers):
    """Events 3 and 4 are committed behind the server's back (their publish lost) and 3 is already pruned:
    the watcher gets `subscribed` with reset at seq 4 (it reloads over HTTP) instead of a room re-reading a
    hole forever, the next reply arrives live after it, and a resume from before the hole is reset too."""
    a = spawn(wait="/readyz")
    mod = Api(a.url).sign_up()
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Pruned"}).status_code == 201
    tid = new_thread(mod, slug, title="Pruned gap")["thread"]["id"]
    w = await watchers(a.ws_url)
    assert (await w.subscribe(tid))["seq"] == 1
    assert mod.post(f"/api/threads/{tid}/posts", json={"body": "two"}).status_code == 201
    await w.wait_seq(tid, 2)

    db = await asyncpg.connect(pg_url)
    try:
        async with db.transaction():  # 3 and 4 taken; only 4 is stored (3 went to retention)
            assert await db.fetchval("UPDATE threads SET seq = seq + 2 WHERE id = $1 RETURNING seq", tid) == 4
            await db.execute("INSERT INTO thread_events (thread_id, seq, name, data) SELECT thread_id, 4, name, data"
                             " FROM thread_events WHERE thread_id = $1 AND seq = 2", tid)
    finally:
        await db.close()
    # No publish: the reconcile loop (every RECONCILE_EVERY s) finds the room behind and reads the hole.
    reset = await w.wait_for(lambda f: f["type"] == "subscribed" and f.get("thread") == tid and f.get("reset"),
                             timeout=30)
    assert reset["seq"] == 4
    assert mod.post(f"/api/threads/{tid}/posts", json={"body": "five"}).status_code == 201
    await w.wait_seq(tid, 5)
    assert w.seqs(tid) == [2, 5]  # nothing across the hole; 5 after the reset
    assert w.frames.index(reset) < w.frames.index(w.events[tid][-1])
    late = await watchers(a.ws_url)
    resumed = await late.subscribe(tid, since=2)
    assert resumed["type"] == "subscribed" and resumed.get("reset") is True and resumed["seq"] == 5
    assert "Traceback" not in a.output()


async def test_live_path_waits_for_a_busy_pool_a_bounded_time_and_answers_try_again(spawn, fresh_db, watchers):
    """With both pooled connections stuck behind a lock the test holds, a feed subscribe answers the error
    `unavailable` and a signed-in handshake is closed with 1013 once ACQUIRE_TIMEOUT passes (no traceback);
    when the lock goes, the stuck subscribes are answered."""
    a = spawn(DATABASE_URL=fresh_db, PARLEY_DB_POOL_SIZE="2", wait="/readyz")
    mod = Api(a.url).sign_up()
    make_moderator(fresh_db, mod.user["username"])
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Busy"}).status_code == 201
    cookie = mod.http.cookies.get("parley_session")
    feed = f"category:{slug}"
    stuck = [await watchers(a.ws_url) for _ in range(2)]
    late = await watchers(a.ws_url)

    db = await asyncpg.connect(fresh_db)
    tx = db.transaction()
    await tx.start()
    try:
        await db.execute("LOCK TABLE categories IN ACCESS EXCLUSIVE MODE")
        for s in stuck:  # each feed lookup takes a pooled connection and waits on the lock
            await s.send({"type": "subscribe", "feed": feed})
        deadline = time.monotonic() + 20
        while await db.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'categories'::regclass"
                                ) < 2:
            assert time.monotonic() < deadline, "the feed lookups never reached the lock"
            await asyncio.sleep(0.1)
        await late.send({"type": "subscribe", "feed": feed})
        error = await late.wait_for(lambda f: f["type"] == "error" and f.get("feed") == feed, timeout=30)
        assert error["code"] == "unavailable"
        ws = await websockets.connect(a.ws_url, additional_headers={"Cookie": f"parley_session={cookie}"},
                                      open_timeout=20)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    finally:
        await tx.rollback()
        await db.close()
    for s in stuck:
        await s.wait_for(lambda f: f["type"] == "subscribed" and f.get("feed") == feed, timeout=20)
    assert "Traceback" not in a.output()
