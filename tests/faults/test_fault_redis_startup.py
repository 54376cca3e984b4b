"""Redis down when `parley serve` starts: the service works on PostgreSQL alone and goes live once Redis appears."""

from __future__ import annotations

import asyncio

import httpx

from fault_support import setup_forum, until_ready
from support.ports import free_port
from support.processes import RedisServer


async def test_redis_down_at_start_serves_then_goes_live_when_redis_appears(spawn, pg_url, watchers):
    """With REDIS_URL on a dead port the server starts, reads and writes work (201), /readyz is 503 naming the
    broker and a watcher still gets every event (from thread_events); once redis-server starts on that port
    /readyz turns 200, events flow live, and every watcher has every seq once, in order."""
    port = free_port()
    # Rate limits on (the production default): the Redis limiter must fail open, not fail the request.
    srv = spawn(REDIS_URL=f"redis://127.0.0.1:{port}/0", PARLEY_RATE_LIMITS="on")
    r = httpx.get(srv.url + "/readyz", timeout=5)
    assert r.status_code == 503, r.text
    assert any("broker" in p for p in r.json()["problems"]), r.text

    mod, slug, tid = setup_forum(srv.url, pg_url)        # sign-up, category, thread: all writes
    assert mod.get(f"/api/threads/{tid}").status_code == 200
    assert mod.get("/api/threads").status_code == 200
    early = await watchers(srv.ws_url, cookie=mod.session_cookie)
    assert (await early.subscribe(tid))["seq"] == 1

    poster = httpx.AsyncClient(base_url=srv.url, cookies=mod.http.cookies, timeout=15)
    for i in range(5):
        r = await poster.post(f"/api/threads/{tid}/posts", json={"body": f"while Redis is down {i}"})
        assert r.status_code == 201, r.text
    # No doorbell rings, but the reconcile loop reads thread_events: nothing is lost, only late.
    await early.wait_seq(tid, 6, timeout=20)
    assert early.seqs(tid) == [2, 3, 4, 5, 6]
    r = httpx.get(srv.url + "/readyz", timeout=5)
    assert r.status_code == 503 and "broker" in r.text, r.text

    redis = RedisServer(port=port).start()
    try:
        took = await until_ready(srv.url, 20)
        print(f"/readyz 200 {took:.1f} s after redis-server started")
        late = await watchers(srv.ws_url)
        subscribed = await late.subscribe(tid, since=0)
        assert subscribed["seq"] == 6 and not subscribed.get("reset")
        assert late.seqs(tid) == [1, 2, 3, 4, 5, 6]    # the outage's events, replayed from the store

        # Live, not via the 5 s reconcile loop: each reply reaches both watchers well within a second.
        loop = asyncio.get_running_loop()
        for i in range(6):
            r = await poster.post(f"/api/threads/{tid}/posts", json={"body": f"live again {i}"})
            assert r.status_code == 201, r.text
            sent = loop.time()
            for w in (early, late):
                await w.wait_seq(tid, 7 + i, timeout=10)
            assert loop.time() - sent < 1.0, f"reply {i} took {loop.time() - sent:.2f} s: not live"
        assert early.seqs(tid) == list(range(2, 13))
        assert late.seqs(tid) == list(range(1, 13))
        assert "parley_broker_reconnects_total" in httpx.get(srv.url + "/metrics").text
    finally:
        await poster.aclose()
        srv.stop(timeout=10)
        redis.stop()
