"""Two real `parley serve` processes on a 3-node Redis Cluster (PARLEY_REDIS_CLUSTER=on)."""

from __future__ import annotations

import asyncio

import httpx

from cluster_support import RedisClusterNodes, command
from support.api import Api, new_thread, unique
from support.databases import make_moderator, namespace


def _keys(cluster: RedisClusterNodes, pattern: str) -> list[bytes]:
    found: list[bytes] = []
    for p in cluster.ports:
        found += command(p, "KEYS", pattern)  # type: ignore[operator]
    return found


async def test_replies_and_presence_cross_processes_through_the_cluster(spawn, pg_url, watchers, redis_cluster):
    """Replies (threads on all 3 nodes) and presence cross between two processes on the cluster, both ways."""
    env = {"REDIS_URL": redis_cluster.url, "PARLEY_REDIS_CLUSTER": "on", "wait": "/readyz"}
    a = spawn(**env)
    b = spawn(PARLEY_RATE_LIMITS="on", **env)  # b runs the Lua token buckets on the cluster
    for p in (a, b):
        assert (await asyncio.to_thread(httpx.get, p.url + "/readyz")).json()["broker"] == "redis-cluster"
    mod = await asyncio.to_thread(Api(a.url).sign_up)
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "Cluster"})
            ).status_code == 201
    # Threads until their channels cover every node (thread ids are spread by CRC16; no hash tags).
    threads: dict[int, int] = {}
    ns = namespace(pg_url)
    for _ in range(30):
        tid = (await asyncio.to_thread(new_thread, mod, slug))["thread"]["id"]
        threads.setdefault(redis_cluster.owner_port(f"{ns}:thread:{tid}"), tid)
        if len(threads) == 3:
            break
    assert len(threads) == 3, threads
    watcher_b = await watchers(b.ws_url)
    for tid in threads.values():
        await watcher_b.subscribe(tid)
    for port, tid in threads.items():
        r = await asyncio.to_thread(mod.post, f"/api/threads/{tid}/posts", json={"body": f"node {port}"})
        assert r.status_code == 201, r.text
    for port, tid in threads.items():
        assert (await watcher_b.wait_seq(tid, 2))[-1]["data"]["body"] == f"node {port}"

    # The other way, and presence: alice signs up and posts through b; a socket on a sees both.
    t0 = next(iter(threads.values()))
    watcher_a = await watchers(a.ws_url)
    await watcher_a.subscribe(t0)
    alice = await asyncio.to_thread(Api(b.url).sign_up)
    alice_ws = await watchers(b.ws_url, cookie=alice.session_cookie)
    await alice_ws.subscribe(t0)
    r = await asyncio.to_thread(alice.post, f"/api/threads/{t0}/posts", json={"body": "through b"})
    assert r.status_code == 201, r.text
    assert (await watcher_a.wait_seq(t0, 3))[-1]["data"]["body"] == "through b"
    try:
        await watcher_a.wait_for(lambda f: f["type"] == "presence" and f.get("thread") == t0
                                 and alice.user["id"] in [u["id"] for u in f["users"]], timeout=10)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- a ---\n{a.output()[-3000:]}\n--- b ---\n{b.output()[-3000:]}") from None
    assert _keys(redis_cluster, "parley:*:rl:*"), "the rate limiter wrote no bucket to the cluster"
    assert _keys(redis_cluster, "parley:*:pr:procs")
    for p in (a, b):  # presence writes and heartbeats went through the cluster client without errors
        out = p.output()
        for bad in ("Traceback", "presence flush failed", "presence heartbeat failed", "rate limiter unavailable"):
            assert bad not in out, out[-4000:]
