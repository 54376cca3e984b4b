"""The cluster broker's subscribers under faults staged for real, each on a 3-node cluster of its own: a
paused node (half-open: no RST), a password on every node (right and wrong), TLS with a self-signed CA.
(A node restart: test_cluster_broker.py.) The idle ping is short so a silent node is noticed fast."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cluster_support import RedisClusterNodes, binaries
from server.live.cluster import RedisClusterBroker, cluster_client
from support.api import Api, new_thread, unique
from support.databases import make_moderator, namespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "faults"))
from test_cluster_broker import Recorder, thread_channels, until  # noqa: E402

from fault_support import metric, poll, self_signed_cert, status_of, until_ready  # noqa: E402


def _cluster(**kw: object) -> Iterator[RedisClusterNodes]:
    found = binaries()
    if isinstance(found, str):
        pytest.skip(f"Redis Cluster tests need Redis 7: {found}")
    cluster = RedisClusterNodes(*found, **kw)  # type: ignore[arg-type]
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def paused_cluster() -> Iterator[RedisClusterNodes]:
    """A cluster whose nodes the test pauses (the session's shared cluster stays undisturbed)."""
    yield from _cluster()


@pytest.fixture(scope="module")
def auth_cluster() -> Iterator[RedisClusterNodes]:
    yield from _cluster(password="cl-s3cret")


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    yield from _cluster(cert=self_signed_cert(tmp_path_factory.mktemp("tls")))


async def _readyz_is(url: str, want: int) -> bool:
    return await status_of(url + "/readyz") == want


async def test_paused_node_is_noticed_and_the_reply_posted_meanwhile_arrives(spawn, pg_url, watchers,
                                                                             paused_cluster):
    """The node owning a thread's channel SIGSTOPped (no RST): the watcher's process drops that node's
    subscriber on the unanswered PING (/readyz 503), and after SIGCONT reconnects and backfills the reply
    posted on the other process meanwhile; it arrives once."""
    env = {"REDIS_URL": paused_cluster.url, "PARLEY_REDIS_CLUSTER": "on", "PARLEY_REDIS_PING_SECONDS": "0.5",
           "wait": "/readyz"}
    a, b = spawn(**env), spawn(**env)
    mod = await asyncio.to_thread(Api(b.url).sign_up)
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "Paused"})
            ).status_code == 201
    tid = (await asyncio.to_thread(new_thread, mod, slug))["thread"]["id"]
    victim = paused_cluster.ports.index(paused_cluster.owner_port(f"{namespace(pg_url)}:thread:{tid}"))
    w = await watchers(a.ws_url)
    await w.subscribe(tid)
    before = metric(a.url, "parley_broker_reconnects_total")

    paused_cluster.pause(victim)
    try:
        await poll(lambda: _readyz_is(a.url, 503), 10, what="A's /readyz 503 while the node is paused")
        async with httpx.AsyncClient(base_url=b.url, cookies=mod.http.cookies, timeout=60) as poster:
            r = await poster.post(f"/api/threads/{tid}/posts", json={"body": "while the node was paused"})
        assert r.status_code == 201, r.text  # its SPUBLISH timed out; the reply is stored
    finally:
        paused_cluster.resume(victim)
    await until_ready(a.url, 30)
    frames = await w.wait_seq(tid, 2, timeout=20)
    assert frames[-1]["data"]["body"] == "while the node was paused"
    assert w.seqs(tid) == [2]
    assert metric(a.url, "parley_broker_reconnects_total") > before


async def test_password_on_every_node_from_the_url_and_a_wrong_one_logged_once(auth_cluster, caplog):
    """Nodes with requirepass: the password in the seed URLs subscribes on every node and delivers; a wrong
    one leaves the broker unhealthy and logs each node's AUTH failure once, not per retry."""
    b = RedisClusterBroker(auth_cluster.url, ping_every=0.5)
    rec = Recorder()
    await b.start(rec)
    try:
        await until(lambda: b.healthy, what="broker healthy")
        channels = thread_channels(auth_cluster)
        for ch in channels.values():
            await b.subscribe(ch)
        for ch in channels.values():
            await b.publish(ch, b"authenticated")
        await rec.wait(lambda: all(rec.on(ch) == [b"authenticated"] for ch in channels.values()))
    finally:
        await b.close()

    wrong = RedisClusterBroker(auth_cluster.url.replace("cl-s3cret", "wrong"), ping_every=0.5)
    with caplog.at_level(logging.WARNING):
        await wrong.start(Recorder())
        try:
            await asyncio.sleep(2)
            assert not wrong.healthy
        finally:
            await wrong.close()
    failures = [r.getMessage() for r in caplog.records if "AUTH failed" in r.getMessage()]
    assert failures, caplog.text
    assert len(failures) == len(set(failures)), failures  # one line per node (or seed) and error, no repeats
    assert all("WRONGPASS" in f for f in failures), failures


async def test_tls_nodes_with_a_self_signed_ca_deliver_and_serve_presence_keys(tls_cluster):
    """Nodes on TLS only (clients and cluster bus): rediss:// seeds with ssl_ca_certs make the broker
    subscribe on every node and deliver, and the app's cluster client (presence, limiter) works too."""
    b = RedisClusterBroker(tls_cluster.url, ping_every=0.5)
    rec = Recorder()
    await b.start(rec)
    client = cluster_client(tls_cluster.url)
    try:
        await until(lambda: b.healthy, what="broker healthy")
        channels = thread_channels(tls_cluster)
        for ch in channels.values():
            await b.subscribe(ch)
        for ch in channels.values():
            await b.publish(ch, b"over TLS")
        await rec.wait(lambda: all(rec.on(ch) == [b"over TLS"] for ch in channels.values()))
        await client.set("parley:test:tls", b"kept")
        assert await client.get("parley:test:tls") == b"kept"
    finally:
        await b.close()
        await client.aclose()


@pytest.mark.parametrize("kind", ["auth", "tls"])
async def test_two_processes_exchange_a_reply_on_a_password_or_tls_cluster(kind, request, spawn, pg_url,
                                                                           watchers):
    """`parley serve` with PARLEY_REDIS_CLUSTER=on and the seeds' password or rediss:// + CA in REDIS_URL:
    both processes get ready (broker, presence and limiter clients alike) and a reply crosses between them."""
    cluster: RedisClusterNodes = request.getfixturevalue(f"{kind}_cluster")
    env = {"REDIS_URL": cluster.url, "PARLEY_REDIS_CLUSTER": "on", "wait": "/readyz"}
    a, b = spawn(**env), spawn(PARLEY_RATE_LIMITS="on", **env)  # b runs the limiter's scripts on the cluster
    mod = await asyncio.to_thread(Api(a.url).sign_up)
    make_moderator(pg_url, mod.user["username"])
    slug = unique("cat-")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": kind})
            ).status_code == 201
    tid = (await asyncio.to_thread(new_thread, mod, slug))["thread"]["id"]
    w = await watchers(b.ws_url)
    await w.subscribe(tid)
    r = await asyncio.to_thread(mod.post, f"/api/threads/{tid}/posts", json={"body": f"through a {kind} cluster"})
    assert r.status_code == 201, r.text
    assert (await w.wait_seq(tid, 2, timeout=3))[-1]["data"]["body"] == f"through a {kind} cluster"
