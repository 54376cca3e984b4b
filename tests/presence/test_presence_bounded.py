"""Bounded frames and paging (CONTRACT rev. 2): 60 users over two processes, frames list ≤ 50 with `count`.

Two `parley serve` processes on a Redis of their own; 60 signed-in users (made in
the database) open one socket each, alternating between the processes, and all
subscribe to one thread; a guest watcher on each process records every frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from presence_helpers import Client, bulk_users, open_ws, start_server
from support.api import Api, new_thread, unique
from support.databases import make_moderator
from support.processes import RedisServer, ServerProcess

N = 60
TOP = 50


@pytest.fixture(scope="module")
def crowd(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Processes A and B on a Redis of their own, N users with sessions, a thread."""
    redis = RedisServer().start()
    procs: list[ServerProcess] = []
    try:
        for _ in range(2):
            procs.append(start_server(pg_url, redis.url, str(tmp_path_factory.mktemp("data"))))
        mod = Api(procs[0].url).sign_up()
        make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
        slug = unique("cat-")
        assert mod.post("/api/categories", json={"slug": slug, "name": "Crowd"}).status_code == 201
        tid = new_thread(mod, slug)["thread"]["id"]
        yield {"procs": procs, "users": bulk_users(pg_url, N), "thread": tid, "mod": mod}
    finally:
        for p in procs:
            p.stop()
        redis.stop()


def get(proc: ServerProcess, path: str) -> httpx.Response:
    return httpx.get(proc.url + path, timeout=10)


def page_all(proc: ServerProcess, path: str, limit: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Every page of a presence endpoint: (all users in order, the count each page carried)."""
    users: list[dict[str, Any]] = []
    counts: list[int] = []
    after = ""
    for _ in range(100):
        r = get(proc, f"{path}?limit={limit}" + (f"&after={after}" if after else ""))
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["users"]) <= limit
        users += body["users"]
        counts.append(body["count"])
        if body["next"] is None:
            return users, counts
        after = body["next"]
    raise AssertionError("paging did not end")


def is_site(f: dict[str, Any]) -> bool:
    return f["type"] == "presence" and f["scope"] == "site"


@pytest.fixture(scope="module")
async def online(crowd: dict[str, Any]) -> Any:
    """All N users online (site and the thread); a guest watcher on each process."""
    procs, tid = crowd["procs"], crowd["thread"]
    watchers = [await open_ws(p) for p in procs]
    for w in watchers:
        await w.send({"type": "subscribe", "thread": tid})
    sockets: list[Client] = []
    for i, (_, cookie) in enumerate(crowd["users"]):
        ws = await open_ws(procs[i % 2], cookie, retries=3)
        await ws.send({"type": "subscribe", "thread": tid})
        sockets.append(ws)
    everyone = {u["id"] for u, _ in crowd["users"]}
    for w in watchers:
        await w.wait_for(lambda f: is_site(f) and f["count"] == N, timeout=20)
        await w.wait_for(lambda f: f["type"] == "presence" and f.get("thread") == tid and f["count"] == N,
                         timeout=20)
    yield {"watchers": watchers, "sockets": sockets, "everyone": everyone}
    for ws in [*sockets, *watchers]:
        await ws.close()


async def test_frames_list_at_most_50_and_count_everyone(crowd: dict[str, Any], online: dict[str, Any]) -> None:
    """With 60 users over two processes, no frame on either lists more than 50, and the last says count 60."""
    tid = crowd["thread"]
    for w in online["watchers"]:
        frames = w.of_type("presence")
        assert frames and all(len(f["users"]) <= TOP for f in frames)
        assert all(f["count"] >= len(f["users"]) for f in frames)
        for last in (w.presence()[-1], w.presence(tid)[-1]):
            assert last["count"] == N and len(last["users"]) == TOP
            assert len({u["id"] for u in last["users"]}) == TOP
            assert {u["id"] for u in last["users"]} <= online["everyone"]
    for ws in online["sockets"]:  # every user's own frames are bounded too
        assert all(len(f["users"]) <= TOP for f in ws.of_type("presence"))


async def test_newest_arrival_is_listed_first_on_both_processes(crowd: dict[str, Any],
                                                                online: dict[str, Any]) -> None:
    """A user arriving on A heads the site frames on A and on B, and the count goes to 61."""
    procs = crowd["procs"]
    late = await asyncio.to_thread(Api(procs[0].url).sign_up)
    uid = late.user["id"]  # type: ignore[index]
    marks = [len(w.frames) for w in online["watchers"]]
    ws = await open_ws(procs[0], late.session_cookie)
    try:
        for w, mark in zip(online["watchers"], marks, strict=True):
            f = await w.wait_for(lambda f: is_site(f) and f["count"] == N + 1, start=mark, timeout=15)
            assert f["users"][0]["id"] == uid and len(f["users"]) == TOP
        own = await ws.wait_for(is_site)
        assert own["users"][0]["id"] == uid
    finally:
        await ws.close()


async def test_paging_returns_everyone_exactly_once_by_name(crowd: dict[str, Any], online: dict[str, Any]) -> None:
    """GET /api/presence and the thread variant, paged by 7 on each process, list all 60 once, by name."""
    procs, tid = crowd["procs"], crowd["thread"]
    for proc in procs:
        for path in ("/api/presence", f"/api/threads/{tid}/presence"):
            users, counts = await asyncio.to_thread(page_all, proc, path, 7)
            got = [u["id"] for u in users]
            assert len(got) == len(set(got)), "someone was listed twice"
            assert set(got) >= online["everyone"]
            assert len(got) == counts[0] and all(c == counts[0] for c in counts)
            keys = [(u["display_name"].lower(), u["id"]) for u in users]
            assert keys == sorted(keys)
            assert set(users[0]) == {"id", "username", "display_name", "avatar_url"}


async def test_default_page_is_50_and_bad_parameters_are_400(crowd: dict[str, Any], online: dict[str, Any]) -> None:
    """Without limit a page has 50 users and a next cursor; limit 201 or a malformed cursor is a 400, a forged
    cursor-shaped one 404."""
    proc = crowd["procs"][1]
    body = (await asyncio.to_thread(get, proc, "/api/presence")).json()
    assert len(body["users"]) == TOP and body["count"] >= N and body["next"]
    assert set(body) == {"users", "guests", "count", "next"}
    big = (await asyncio.to_thread(get, proc, "/api/presence?limit=200")).json()
    assert len(big["users"]) == big["count"] and big["next"] is None
    for bad in ("?limit=201", "?limit=0", "?after=not+a+cursor", "?after=%2F%2F%2F"):
        r = await asyncio.to_thread(get, proc, "/api/presence" + bad)
        assert r.status_code == 400, (bad, r.text)
    r = await asyncio.to_thread(get, proc, "/api/presence?after=not-a-cursor")
    assert r.status_code == 404 and r.json()["error"]["code"] == "bad_cursor", r.text
