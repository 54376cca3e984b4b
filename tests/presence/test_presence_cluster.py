"""Presence across two server processes sharing one Redis (the Redis Cluster broker: tests/cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from presence_helpers import eventually, has, ids, open_ws, site, start_server, thread_presence
from support.api import Api, new_thread, unique
from support.databases import make_moderator
from support.processes import RedisServer, ServerProcess


@pytest.fixture(scope="module")
def pair(pg_url: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[dict[str, Any]]:
    """Processes A and B on a Redis of their own, a moderator and a category."""
    redis = RedisServer().start()
    extra: dict[str, str] = {}
    procs: list[ServerProcess] = []
    try:
        for _ in range(2):
            procs.append(start_server(pg_url, redis.url, str(tmp_path_factory.mktemp("data")), **extra))
        mod = Api(procs[0].url).sign_up()
        make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
        slug = unique("cat-")
        assert mod.post("/api/categories", json={"slug": slug, "name": "Presence"}).status_code == 201
        yield {"a": procs[0], "b": procs[1], "category": slug}
    finally:
        for p in procs:
            p.stop()
        redis.stop()


def is_tp(frame: dict[str, Any], thread_id: int) -> bool:
    return frame["type"] == "presence" and frame.get("thread") == thread_id


async def test_same_user_on_two_processes_listed_once(pair: dict[str, Any]) -> None:
    """One user with a tab on each process is listed once, in frames and GET /api/presence on both."""
    a, b = pair["a"], pair["b"]
    alice = await asyncio.to_thread(Api(a.url).sign_up)
    uid = alice.user["id"]  # type: ignore[index]
    tab_a = await open_ws(a, alice.session_cookie)
    tab_b = await open_ws(b, alice.session_cookie)
    for tab in (tab_a, tab_b):
        frame = await tab.wait_for(has(alice))
        assert [u["id"] for u in frame["users"]].count(uid) == 1
    for proc in (a, b):
        body = await asyncio.to_thread(site, proc)
        assert [u["id"] for u in body["users"]].count(uid) == 1
    await tab_a.close()
    await tab_b.close()


async def test_users_and_guests_on_another_process_are_seen(pair: dict[str, Any]) -> None:
    """A user and a guest connected to B appear in the site presence pushed to a socket on A."""
    a, b = pair["a"], pair["b"]
    watcher = await open_ws(a)
    base = (await watcher.wait_for(lambda f: f["type"] == "presence"))["guests"]
    bob = await asyncio.to_thread(Api(b.url).sign_up)
    tab = await open_ws(b, bob.session_cookie)
    guest = await open_ws(b)
    await watcher.wait_for(lambda f: has(bob)(f) and f["guests"] == base + 1, timeout=10)
    mark = len(watcher.frames)
    await guest.close()
    await watcher.wait_for(lambda f: f["type"] == "presence" and f["guests"] == base, start=mark, timeout=10)
    await tab.close()
    await watcher.close()


async def test_thread_watchers_across_processes(pair: dict[str, Any]) -> None:
    """Watchers of one thread on two processes see each other; an unsubscribe on B reaches A's watchers."""
    a, b = pair["a"], pair["b"]
    alice = await asyncio.to_thread(Api(a.url).sign_up)
    bob = await asyncio.to_thread(Api(b.url).sign_up)
    tid = (await asyncio.to_thread(new_thread, alice, pair["category"]))["thread"]["id"]
    wa = await open_ws(a, alice.session_cookie)
    wb = await open_ws(b, bob.session_cookie)
    await wa.send({"type": "subscribe", "thread": tid})
    await wa.wait_for(lambda f: is_tp(f, tid))
    # A writes to Redis in batches (every 0.1 s): once B can read alice, B's snapshot on subscribe has her.
    await eventually(lambda: ids(thread_presence(b, tid)) == {alice.user["id"]})  # type: ignore[index]
    await wb.send({"type": "subscribe", "thread": tid})
    both = {alice.user["id"], bob.user["id"]}  # type: ignore[index]
    first_b = await wb.wait_for(lambda f: is_tp(f, tid))
    assert ids(first_b) == both  # the snapshot on subscribe already includes the other process
    await wa.wait_for(lambda f: is_tp(f, tid) and ids(f) == both, timeout=10)
    for proc in (a, b):
        assert ids(await asyncio.to_thread(thread_presence, proc, tid)) == both
    mark = len(wa.frames)
    await wb.send({"type": "unsubscribe", "thread": tid})
    await wa.wait_for(lambda f: is_tp(f, tid) and ids(f) == {alice.user["id"]}, start=mark,  # type: ignore[index]
                      timeout=10)
    assert ids(await asyncio.to_thread(thread_presence, b, tid)) == {alice.user["id"]}  # type: ignore[index]
    await wa.close()
    await wb.close()


async def test_typing_relayed_across_processes_never_echoed(pair: dict[str, Any]) -> None:
    """Typing on A reaches watchers on B and other tabs on A, but never the socket that sent it."""
    a, b = pair["a"], pair["b"]
    alice = await asyncio.to_thread(Api(a.url).sign_up)
    bob = await asyncio.to_thread(Api(b.url).sign_up)
    tid = (await asyncio.to_thread(new_thread, alice, pair["category"]))["thread"]["id"]
    sender = await open_ws(a, alice.session_cookie)
    other_tab = await open_ws(a, alice.session_cookie)
    remote = await open_ws(b, bob.session_cookie)
    remote_guest = await open_ws(b)
    clients = (sender, other_tab, remote, remote_guest)
    for ws in clients:
        await ws.send({"type": "subscribe", "thread": tid})
        await ws.wait_for(lambda f: is_tp(f, tid))
    await sender.send({"type": "typing", "thread": tid})
    for ws in (other_tab, remote, remote_guest):
        got = await ws.wait_for(lambda f: f["type"] == "typing", timeout=5)
        assert got["thread"] == tid and got["user"]["id"] == alice.user["id"]  # type: ignore[index]
        assert set(got["user"]) == {"id", "username", "display_name", "avatar_url"}
    await remote.send({"type": "typing", "thread": tid})
    got = await sender.wait_for(lambda f: f["type"] == "typing", timeout=5)
    assert got["user"]["id"] == bob.user["id"]  # type: ignore[index]
    await asyncio.sleep(0.5)
    assert [f["user"]["id"] for f in sender.of_type("typing")] == [bob.user["id"]]  # type: ignore[index]
    assert [f["user"]["id"] for f in remote.of_type("typing")] == [alice.user["id"]]  # type: ignore[index]
    for ws in clients:
        await ws.close()


async def test_presence_survives_a_redis_restart(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """After Redis restarts empty, each process writes its entries again: B lists A's user once more."""
    redis = RedisServer().start()
    procs: list[ServerProcess] = []
    try:
        for _ in range(2):
            procs.append(await asyncio.to_thread(start_server, pg_url, redis.url, str(tmp_path_factory.mktemp("d"))))
        a, b = procs
        alice = await asyncio.to_thread(Api(a.url).sign_up)
        tab = await open_ws(a, alice.session_cookie)
        watcher = await open_ws(b)
        await watcher.wait_for(has(alice), timeout=10)
        redis.stop()
        redis.start()  # same port, no data: every lease and entry is gone
        await eventually(lambda: alice.user["id"] in ids(site(b)), timeout=20, every=0.5)  # type: ignore[index]
        await tab.close()
        await watcher.close()
    finally:
        for p in procs:
            await asyncio.to_thread(p.stop)
        redis.stop()
