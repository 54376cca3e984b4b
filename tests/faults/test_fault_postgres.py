"""PostgreSQL faults: Parley's connections killed mid-traffic, and the whole server restarted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg
import httpx

from fault_support import ThrowawayPostgres, assert_error_body, consistency, poll, setup_forum, status_of, until_ready
from support.api import Api

KILL = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = 'parley' AND datname = current_database() AND pid <> pg_backend_pid()")
REQUEST_TIMEOUT = 15.0  # a request slower than this counts as a hang


async def test_connections_killed_mid_traffic_fail_cleanly_and_nothing_is_half_written(spawn, fresh_db, watchers):
    """pg_terminate_backend on every Parley connection, five times while 8 clients post: each request answers
    201 or a clean 503 (contract body, never 500, never a hang), the pool recovers by itself, no post lacks its
    event (or the reverse), threads.seq matches the events, and a watcher gets every seq once, in order."""
    srv = spawn(DATABASE_URL=fresh_db)
    mod, slug, tid1 = setup_forum(srv.url, fresh_db)
    tid2 = setup_forum(srv.url, fresh_db)[2]
    threads = [tid1, tid2]
    w = await watchers(srv.ws_url)
    for t in threads:
        await w.subscribe(t)
    clients = [httpx.AsyncClient(base_url=srv.url, cookies=Api(srv.url).sign_up().http.cookies,
                                 timeout=REQUEST_TIMEOUT) for _ in range(8)]
    outcomes: Counter[str] = Counter()
    created: dict[int, list[int]] = {t: [] for t in threads}
    stop = asyncio.Event()
    unexpected: list[str] = []

    async def poster(k: int, client: httpx.AsyncClient) -> None:
        i = 0
        while not stop.is_set():
            tid = threads[k % 2]
            try:
                if i % 4 == 3:
                    r = await client.get(f"/api/threads/{tid}")
                else:
                    r = await client.post(f"/api/threads/{tid}/posts", json={"body": f"poster {k} reply {i}"})
            except httpx.TimeoutException:
                outcomes["hang"] += 1
                continue
            except httpx.TransportError as exc:  # the server dropped the connection without an answer
                unexpected.append(f"no answer: {exc!r}")
                i += 1
                continue
            i += 1
            outcomes[str(r.status_code)] += 1
            if r.status_code == 201:
                created[tid].append(r.json()["post"]["id"])
            elif r.status_code == 503:
                assert_error_body(r, 503, "unavailable")
            elif r.status_code != 200:
                unexpected.append(f"{r.status_code} {r.request.method} {r.url.path}: {r.text[:200]}")

    killed = []

    async def killer() -> None:
        admin = await asyncpg.connect(fresh_db)
        try:
            await asyncio.sleep(0.5)
            for _ in range(5):
                killed.append(await admin.fetchval(KILL))
                await asyncio.sleep(0.4)
            await asyncio.sleep(0.3)
        finally:
            await admin.close()
            stop.set()

    await asyncio.gather(killer(), *(poster(k, c) for k, c in enumerate(clients)))
    print("terminated per round:", killed, "outcomes:", dict(outcomes))
    assert sum(killed) >= 5, killed                     # the faults really happened
    errors = sorted({line for line in srv.output().splitlines() if line.startswith(("asyncpg.", "builtins."))
                     or "Error: " in line and not line.startswith(" ")})
    assert not unexpected, f"{len(unexpected)} unexpected answers, e.g. {unexpected[:3]}; server errors: {errors}"
    assert outcomes["hang"] == 0, outcomes
    assert outcomes["201"] > 20, outcomes

    # The pool recovers by itself: with no more kills, every request succeeds.
    for i in range(20):
        r = await clients[i % 8].post(f"/api/threads/{threads[i % 2]}/posts", json={"body": f"after {i}"})
        assert r.status_code == 201, r.text
        created[threads[i % 2]].append(r.json()["post"]["id"])
    assert await status_of(srv.url + "/readyz") == 200

    # Nothing half-written: every post has its event, every event its post, seq = number of events.
    check = await consistency(fresh_db, threads)
    assert check["posts_without_event"] == 0 and check["events_without_post"] == 0, check
    assert check["seq_mismatch"] == 0, check
    acknowledged = sum(len(v) for v in created.values())
    assert check["posts"] >= acknowledged + 2, check     # + the two questions
    conn = await asyncpg.connect(fresh_db)
    try:
        seqs = {r["id"]: r["seq"] for r in await conn.fetch("SELECT id, seq FROM threads WHERE id = any($1)",
                                                              threads)}
        for t in threads:
            ids = [r["id"] for r in await conn.fetch("SELECT id FROM posts WHERE thread_id = $1", t)]
            assert set(created[t]) <= set(ids)           # every 201 was really stored
    finally:
        await conn.close()

    # The live stream lost nothing either (gaps are backfilled from the store).
    for t in threads:
        await w.wait_seq(t, seqs[t], timeout=20)
        assert w.seqs(t) == list(range(2, seqs[t] + 1))
    for c in clients:
        await c.aclose()


async def test_postgres_restart_gives_503_then_recovers_without_a_parley_restart(spawn, watchers):
    """A throwaway PostgreSQL cluster is stopped (pg_ctl -m fast) under a running server: reads and writes get
    503 with the contract's body quickly (no 500, no hang) and /readyz is 503; once it is started again the
    same server process answers 201 and /readyz 200, and a watcher gets the outage's neighbours in order."""
    pg = ThrowawayPostgres().start()
    try:
        srv = spawn(DATABASE_URL=pg.url)
        pid = srv.proc.pid
        mod, slug, tid = setup_forum(srv.url, pg.url)
        w = await watchers(srv.ws_url)
        await w.subscribe(tid)
        client = httpx.AsyncClient(base_url=srv.url, cookies=mod.http.cookies, timeout=REQUEST_TIMEOUT)
        r = await client.post(f"/api/threads/{tid}/posts", json={"body": "before the restart"})
        assert r.status_code == 201, r.text
        await w.wait_seq(tid, 2)

        await asyncio.to_thread(pg.stop, "fast")
        for path in (f"/api/threads/{tid}", "/api/threads", "/api/me"):
            t0 = time.monotonic()
            r = await client.get(path)
            assert_error_body(r, 503, "unavailable")
            assert time.monotonic() - t0 < 12, f"GET {path} took {time.monotonic() - t0:.1f} s"
        for i in range(3):
            t0 = time.monotonic()
            r = await client.post(f"/api/threads/{tid}/posts", json={"body": f"during the outage {i}"})
            assert_error_body(r, 503, "unavailable")
            assert time.monotonic() - t0 < 12
        r = httpx.get(srv.url + "/readyz", timeout=10)
        assert r.status_code == 503 and "database" in r.text, r.text

        await asyncio.to_thread(pg.start)
        took = await until_ready(srv.url, 20)
        print(f"/readyz 200 {took:.1f} s after PostgreSQL came back")

        async def posts_again() -> bool:
            r = await client.post(f"/api/threads/{tid}/posts", json={"body": "after the restart"})
            assert r.status_code in (201, 503), r.text
            return r.status_code == 201
        await poll(posts_again, 10, interval=0.5, what="a 201 after the restart")
        for i in range(5):
            r = await client.post(f"/api/threads/{tid}/posts", json={"body": f"steady {i}"})
            assert r.status_code == 201, r.text
        assert (await client.get(f"/api/threads/{tid}")).status_code == 200
        assert srv.proc.pid == pid and srv.proc.poll() is None   # the same process, never restarted
        check = await consistency(pg.url, [tid])
        assert check["posts_without_event"] == check["events_without_post"] == check["seq_mismatch"] == 0, check
        last = check["posts"]                                   # one event per post here: seq == posts
        await w.wait_seq(tid, last, timeout=15)
        assert w.seqs(tid) == list(range(2, last + 1))
        await client.aclose()
        srv.stop(timeout=10)
    finally:
        pg.destroy()
