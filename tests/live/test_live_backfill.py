"""Backfill against real parts: a broker outage with many rooms on one process, and the pool timeout."""

from __future__ import annotations

import asyncio
import math
import time

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from server.errors import NotFound
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
    """With every pooled connection taken, a join gives up after ACQUIRE_TIMEOUT with TimeoutError (which
    ws.py answers as `unavailable`) instead of queueing forever, and leaves no half-made room."""
    monkeypatch.setattr(hub_module, "ACQUIRE_TIMEOUT", 0.3)
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=1)
    try:
        hub = Hub(pool, MemoryBroker())
        conn = Conn(None, 1 << 20)
        async with pool.acquire():  # the only connection is busy
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(hub.join(conn, 1, None), 10)
        assert not hub.rooms
        with pytest.raises(NotFound):  # the pool is free again: the join reaches the database
            await hub.join(conn, -1, None)
    finally:
        await pool.close()
