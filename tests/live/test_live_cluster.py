"""Several real `parley serve` processes sharing PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import httpx

from support.api import Api, new_thread, unique
from support.databases import make_moderator


def _setup(url: str, pg_url: str) -> tuple[Api, str]:
    mod = Api(url).sign_up()
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Cluster"}).status_code == 201
    return mod, slug


async def test_reply_reaches_watchers_on_three_processes(spawn, pg_url, watchers):
    """A reply posted through one process reaches watchers on every process (three, one Redis)."""
    procs = [spawn() for _ in range(3)]
    mod, slug = _setup(procs[0].url, pg_url)
    tid = new_thread(mod, slug)["thread"]["id"]
    ws = [await watchers(p.ws_url) for p in procs]
    for w in ws:
        await w.subscribe(tid)
    for i, p in enumerate(procs):
        poster = Api(p.url).sign_up()
        r = await asyncio.to_thread(poster.post, f"/api/threads/{tid}/posts", json={"body": f"from process {i}"})
        assert r.status_code == 201
    for w in ws:
        events = await w.wait_seq(tid, 4)
        assert [e["seq"] for e in events] == [2, 3, 4]
        assert [e["data"]["body"] for e in events] == ["from process 0", "from process 1", "from process 2"]


async def test_concurrent_posters_every_watcher_gets_every_seq_once(spawn, pg_url, watchers):
    """4 posters × 100 replies through two processes: watchers on both get seq 2..401 in order, once each."""
    a, b = spawn(), spawn()
    mod, slug = _setup(a.url, pg_url)
    tid = new_thread(mod, slug)["thread"]["id"]
    ws = [await watchers(p.ws_url) for p in (a, b, a, b)]
    for w in ws:
        await w.subscribe(tid)
    posters = []
    for i in range(4):
        api = Api((a, b)[i % 2].url).sign_up()
        posters.append(httpx.AsyncClient(base_url=(a, b)[i % 2].url, cookies=api.http.cookies, timeout=30))

    async def post_many(client: httpx.AsyncClient, n: int) -> None:
        for j in range(n):
            r = await client.post(f"/api/threads/{tid}/posts", json={"body": f"reply {j}"})
            assert r.status_code == 201, r.text

    await asyncio.gather(*(post_many(c, 100) for c in posters))
    for w in ws:
        await w.wait_seq(tid, 401, timeout=60)
        assert w.seqs(tid) == list(range(2, 402))
    for c in posters:
        await c.aclose()


async def test_workers_flag_runs_processes_that_share_the_broker(spawn, pg_url, watchers):
    """`parley serve --workers 2`: sockets spread over both workers all get the reply, and /metrics
    sums both workers' open sockets."""
    srv = spawn(workers=2)
    mod, slug = _setup(srv.url, pg_url)
    tid = new_thread(mod, slug)["thread"]["id"]
    ws = [await watchers(srv.ws_url) for _ in range(8)]
    for w in ws:
        await w.subscribe(tid)
    r = await asyncio.to_thread(mod.post, f"/api/threads/{tid}/posts", json={"body": "to every worker"})
    assert r.status_code == 201
    for w in ws:
        assert (await w.wait_seq(tid, 2))[-1]["data"]["body"] == "to every worker"
    text = (await asyncio.to_thread(httpx.get, srv.url + "/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("parley_ws_open_sockets"))
    assert float(line.split()[-1]) == 8
