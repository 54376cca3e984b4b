"""The recent history a resume is served from (docs/live.md "The recent history a resume reads"), end to end:
real `parley serve` processes, a Redis of the test's own that is restarted, a process SIGTERMed and started
again on its port; the history's hits and misses read from each process's /metrics."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx

from support.api import Api, new_thread, unique
from support.databases import make_moderator

SAMPLE = re.compile(r'^(parley_history_\w+?)(?:\{source="(\w+)"\})? ([0-9.e+]+)$')


def history(url: str) -> dict[str, float]:
    """The process's history counters: memory, database, reset (resumes by source) and warm (room reads)."""
    out = {"memory": 0.0, "database": 0.0, "reset": 0.0, "warm": 0.0}
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        m = SAMPLE.match(line)
        if m is None:
            continue
        if m.group(1) == "parley_history_resumes_total":
            out[m.group(2)] = float(m.group(3))
        elif m.group(1) == "parley_history_warm_reads_total":
            out["warm"] = float(m.group(3))
    return out


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after}


def forum(url: str, pg_url: str, threads: int = 1) -> tuple[Api, list[int]]:
    mod = Api(url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "History"}).status_code == 201
    return mod, [new_thread(mod, slug)["thread"]["id"] for _ in range(threads)]


async def post(api: Api, tid: int, n: int, tag: str) -> None:
    for i in range(n):
        r = await asyncio.to_thread(api.post, f"/api/threads/{tid}/posts", json={"body": f"{tag} {i}"})
        assert r.status_code == 201, r.text


async def ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (await asyncio.to_thread(httpx.get, url + "/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "readyz never answered 200"
        await asyncio.sleep(0.2)


async def resume_all(watchers: Any, ws_url: str, resumes: list[tuple[int, int]]) -> list[Any]:
    """A socket per (thread, since), all subscribing at once; each is checked to have been answered."""
    socks = [await watchers(ws_url) for _ in resumes]
    subs = await asyncio.gather(*(w.subscribe(tid, since) for w, (tid, since) in zip(socks, resumes)))
    assert all(s["type"] == "subscribed" and "reset" not in s for s in subs), subs
    return socks


async def test_after_a_redis_restart_resumes_come_from_the_history_with_every_event_once(
        spawn, pg_url, own_redis, watchers):
    """Redis restarted while replies are posted: the room backfills them into its history, and sockets that
    resume with `since` afterwards get every missed event once, in order, all from memory (no database
    replay, no second history read)."""
    a = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    b = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    mod, (tid,) = forum(a.url, pg_url)
    poster = Api(b.url).sign_up()
    keeper = await watchers(a.ws_url)  # keeps the room open on `a` through the outage
    await keeper.subscribe(tid)
    leaving = [await watchers(a.ws_url) for _ in range(10)]
    for w in leaving:
        await w.subscribe(tid)
    await post(poster, tid, 2, "before")
    for w in leaving:
        await w.wait_seq(tid, 3)
        assert w.seqs(tid) == [2, 3]
        await w.close()
    own_redis.stop()
    await post(poster, tid, 3, "during the outage")  # stored; their publishes fail
    own_redis.start()
    await ready(a.url)
    await ready(b.url)
    await keeper.wait_seq(tid, 6, timeout=30)  # the backfill after the reconnect
    await post(poster, tid, 2, "after")
    await keeper.wait_seq(tid, 8, timeout=30)
    assert keeper.seqs(tid) == list(range(2, 9))
    before = history(a.url)
    back = await resume_all(watchers, a.ws_url, [(tid, 3)] * 10)
    for w in back:
        assert w.seqs(tid) == [4, 5, 6, 7, 8]
    assert delta(history(a.url), before) == {"memory": 10, "database": 0, "reset": 0, "warm": 0}
    await post(poster, tid, 1, "live again")
    for w in back:
        await w.wait_seq(tid, 9)
        assert w.seqs(tid) == [4, 5, 6, 7, 8, 9]


async def test_after_a_process_restart_each_room_reads_its_history_once_for_all_its_sockets(
        spawn, pg_url, own_redis, watchers):
    """The process SIGTERMed while another takes replies, then started again on its port: 24 sockets on 3
    threads resume at once and get every missed event once, in order; the restarted process read each
    thread's history once (3 reads, not 24) and replayed every socket from memory."""
    a = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    b = spawn(REDIS_URL=own_redis.url, wait="/readyz")
    mod, tids = forum(a.url, pg_url, threads=3)
    poster = Api(b.url).sign_up()
    socks = [await watchers(a.ws_url) for _ in range(24)]
    for i, w in enumerate(socks):
        await w.subscribe(tids[i % 3])
    for tid in tids:
        await post(poster, tid, 1, "seen")
    for i, w in enumerate(socks):
        await w.wait_seq(tids[i % 3], 2)
    a.stop()
    for tid in tids:
        await post(poster, tid, 3, "missed")
    a2 = spawn(port=a.port, REDIS_URL=own_redis.url, wait="/readyz")
    before = history(a2.url)
    back = await resume_all(watchers, a2.ws_url, [(tids[i % 3], 2) for i in range(len(socks))])
    for i, w in enumerate(back):
        assert w.seqs(tids[i % 3]) == [3, 4, 5]
    assert delta(history(a2.url), before) == {"memory": 24, "database": 0, "reset": 0, "warm": 3}
    for tid in tids:
        await post(poster, tid, 1, "live")
    for i, w in enumerate(back):
        await w.wait_seq(tids[i % 3], 6)
        assert w.seqs(tids[i % 3]) == [3, 4, 5, 6]


async def test_a_resume_beyond_the_history_count_or_age_reads_postgresql_without_a_gap(spawn, pg_url, watchers):
    """With a history of 4 events, a resume 10 back reads the database and one 3 back does not; with an age
    bound of 1 s, a resume into events older than that reads the database. Every event arrives once."""
    by_count = spawn(PARLEY_HISTORY_EVENTS="4")
    mod, (tid,) = forum(by_count.url, pg_url)
    keeper = await watchers(by_count.ws_url)
    await keeper.subscribe(tid)
    await post(mod, tid, 10, "reply")
    await keeper.wait_seq(tid, 11)
    before = history(by_count.url)
    (far,) = await resume_all(watchers, by_count.ws_url, [(tid, 1)])
    assert far.seqs(tid) == list(range(2, 12))
    assert delta(history(by_count.url), before) == {"memory": 0, "database": 1, "reset": 0, "warm": 0}
    (near,) = await resume_all(watchers, by_count.ws_url, [(tid, 8)])
    assert near.seqs(tid) == [9, 10, 11]
    assert delta(history(by_count.url), before) == {"memory": 1, "database": 1, "reset": 0, "warm": 0}

    by_age = spawn(PARLEY_HISTORY_SECONDS="1")
    keeper2 = await watchers(by_age.ws_url)
    await keeper2.subscribe(tid)
    await post(mod, tid, 2, "aging")
    await keeper2.wait_seq(tid, 13)
    await asyncio.sleep(1.5)  # past the age bound: not a timing assertion, the events only have to be older
    before = history(by_age.url)
    (old,) = await resume_all(watchers, by_age.ws_url, [(tid, 11)])
    assert old.seqs(tid) == [12, 13]
    assert delta(history(by_age.url), before) == {"memory": 0, "database": 1, "reset": 0, "warm": 0}
    await post(mod, tid, 1, "live")
    await old.wait_seq(tid, 14)
    assert old.seqs(tid) == [12, 13, 14]
