"""Presence on one server process, run against Redis and against the in-process twin (no REDIS_URL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from presence_helpers import Client, has, ids, lacks, open_ws, site, start_server, thread_presence
from support.api import Api, new_thread, unique
from support.databases import make_moderator
from support.processes import RedisServer, ServerProcess


@pytest.fixture(scope="module", params=["redis", "memory"])
def backend(request: pytest.FixtureRequest, pg_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, Any]]:
    """A server with its own Redis, or with none (the in-process twin), plus a moderator and a category."""
    redis = RedisServer().start() if request.param == "redis" else None
    server = start_server(pg_url, redis.url if redis else None, str(tmp_path_factory.mktemp("data")),
                          PARLEY_PRESENCE_GRACE_SECONDS=str(GRACE))
    try:
        mod = Api(server.url).sign_up()
        make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
        slug = unique("cat-")
        assert mod.post("/api/categories", json={"slug": slug, "name": "Presence"}).status_code == 201
        yield {"server": server, "mod": mod, "category": slug, "kind": request.param}
    finally:
        server.stop()
        if redis is not None:
            redis.stop()


GRACE = 2.0  # short here; test_presence_lifetimes.py measures the real default


def is_tp(frame: dict[str, Any], thread_id: int) -> bool:
    return frame["type"] == "presence" and frame.get("thread") == thread_id


def user(backend: dict[str, Any]) -> Api:
    return Api(backend["server"].url).sign_up(display_name=unique("Name "))


async def test_hello_then_site_presence_listing_me(backend: dict[str, Any]) -> None:
    """The first frames are hello, then at once a site presence frame that lists the user."""
    alice = await asyncio.to_thread(user, backend)
    ws = await open_ws(backend["server"], alice.session_cookie)
    first = await ws.wait_for(lambda f: f["type"] == "presence")
    kinds = [f["type"] for _, f in ws.frames]
    assert kinds[:2] == ["hello", "presence"]
    assert first["scope"] == "site" and alice.user["id"] in ids(first)  # type: ignore[index]
    assert set(first["users"][0]) == {"id", "username", "display_name", "avatar_url"}
    await ws.close()


async def test_two_tabs_of_one_user_listed_once(backend: dict[str, Any]) -> None:
    """Two tabs of one user: Active Now lists the user exactly once (frame and GET /api/presence)."""
    server: ServerProcess = backend["server"]
    alice = await asyncio.to_thread(user, backend)
    tab1 = await open_ws(server, alice.session_cookie)
    tab2 = await open_ws(server, alice.session_cookie)
    frame = await tab2.wait_for(has(alice))
    uid = alice.user["id"]  # type: ignore[index]
    assert [u["id"] for u in frame["users"]].count(uid) == 1
    body = await asyncio.to_thread(site, server)
    assert [u["id"] for u in body["users"]].count(uid) == 1
    await tab1.close()
    await tab2.close()


async def test_closing_one_tab_keeps_the_user(backend: dict[str, Any]) -> None:
    """Closing one of two tabs leaves the user listed, and no frame without them is sent."""
    server: ServerProcess = backend["server"]
    alice = await asyncio.to_thread(user, backend)
    watcher = await open_ws(server)
    tab1 = await open_ws(server, alice.session_cookie)
    tab2 = await open_ws(server, alice.session_cookie)
    await watcher.wait_for(has(alice))
    mark = len(watcher.frames)
    await tab1.close()
    await asyncio.sleep(GRACE + 1.5)  # past the grace period: the open tab alone keeps the user
    assert alice.user["id"] in ids(await asyncio.to_thread(site, server))  # type: ignore[index]
    assert not [f for _, f in watcher.frames[mark:] if lacks(alice)(f)]
    await tab2.close()
    await watcher.close()


async def test_reload_within_grace_does_not_flap(backend: dict[str, Any]) -> None:
    """A page reload (close, reopen a second later) never shows the user leaving."""
    server: ServerProcess = backend["server"]
    alice = await asyncio.to_thread(user, backend)
    watcher = await open_ws(server)
    tab = await open_ws(server, alice.session_cookie)
    await watcher.wait_for(has(alice))
    mark = len(watcher.frames)
    await tab.close()
    await asyncio.sleep(GRACE / 3)
    tab = await open_ws(server, alice.session_cookie)
    await asyncio.sleep(GRACE)
    assert not [f for _, f in watcher.frames[mark:] if lacks(alice)(f)]
    await tab.close()
    await watcher.close()


async def test_guests_counted_per_socket(backend: dict[str, Any]) -> None:
    """Each guest socket counts once in `guests`; a closed guest socket stops counting at once."""
    server: ServerProcess = backend["server"]
    watcher = await open_ws(server)
    base = (await watcher.wait_for(lambda f: f["type"] == "presence"))["guests"]
    g1, g2 = await open_ws(server), await open_ws(server)
    mark = len(watcher.frames)
    await watcher.wait_for(lambda f: f["type"] == "presence" and f["guests"] == base + 2, start=mark)
    assert (await asyncio.to_thread(site, server))["guests"] == base + 2
    mark = len(watcher.frames)
    await g1.close()
    await g2.close()
    await watcher.wait_for(lambda f: f["type"] == "presence" and f["guests"] == base, start=mark, timeout=5)
    assert (await asyncio.to_thread(site, server))["guests"] == base
    await watcher.close()


async def test_thread_watchers_follow_subscribe_and_unsubscribe(backend: dict[str, Any]) -> None:
    """Subscribing adds the socket to the thread's presence (frame after `subscribed`, GET); unsubscribing
    removes it."""
    server: ServerProcess = backend["server"]
    alice, bob = await asyncio.to_thread(user, backend), await asyncio.to_thread(user, backend)
    tid = (await asyncio.to_thread(new_thread, alice, backend["category"]))["thread"]["id"]
    a = await open_ws(server, alice.session_cookie)
    await a.send({"type": "subscribe", "thread": tid})
    first = await a.wait_for(lambda f: f["type"] == "presence" and f.get("thread") == tid)
    kinds = [f["type"] for _, f in a.frames if f["type"] in ("subscribed", "presence") and f.get("thread") == tid]
    assert kinds[:2] == ["subscribed", "presence"]
    assert first["scope"] == "thread" and ids(first) == {alice.user["id"]} and first["guests"] == 0  # type: ignore

    b = await open_ws(server, bob.session_cookie)
    guest = await open_ws(server)
    for ws in (b, guest):
        await ws.send({"type": "subscribe", "thread": tid})
    both = {alice.user["id"], bob.user["id"]}  # type: ignore[index]
    await a.wait_for(lambda f: is_tp(f, tid) and ids(f) == both and f["guests"] == 1)
    body = await asyncio.to_thread(thread_presence, server, tid)
    assert ids(body) == both and body["guests"] == 1

    # Carol drops her connection first (she stays listed for the grace period), then Bob unsubscribes: the
    # frame without Bob still lists Carol, so an explicit unsubscribe is not a dropped connection (no grace).
    carol = await asyncio.to_thread(user, backend)
    c = await open_ws(server, carol.session_cookie)
    await c.send({"type": "subscribe", "thread": tid})
    await a.wait_for(lambda f: is_tp(f, tid) and carol.user["id"] in ids(f))  # type: ignore[index]
    mark = len(a.frames)
    await c.close()
    await b.send({"type": "unsubscribe", "thread": tid})
    await b.wait_for(lambda f: f["type"] == "unsubscribed" and f["thread"] == tid)
    left = await a.wait_for(lambda f: is_tp(f, tid) and bob.user["id"] not in ids(f), start=mark)  # type: ignore
    assert ids(left) == {alice.user["id"], carol.user["id"]}, left  # type: ignore[index]
    await a.wait_for(lambda f: is_tp(f, tid) and ids(f) == {alice.user["id"]}, start=mark,  # type: ignore[index]
                     timeout=GRACE + 30)  # then Carol's grace runs out
    body = await asyncio.to_thread(thread_presence, server, tid)
    assert ids(body) == {alice.user["id"]} and body["guests"] == 1  # type: ignore[index]
    assert bob.user["id"] in ids(await asyncio.to_thread(site, server))  # type: ignore[index]  # still on the site
    n_before = len(b.presence(tid))
    await asyncio.sleep(1.5)
    assert len(b.presence(tid)) == n_before  # no more thread frames after unsubscribing
    for ws in (a, b, guest):
        await ws.close()


async def test_thread_presence_of_unknown_thread_is_404(backend: dict[str, Any]) -> None:
    """GET /api/threads/{id}/presence of a thread that does not exist answers 404."""
    r = await asyncio.to_thread(backend["mod"].get, "/api/threads/999999999/presence")
    assert r.status_code == 404 and r.json()["error"]["code"]


async def test_typing_reaches_others_never_the_sender(backend: dict[str, Any]) -> None:
    """`typing` goes to the thread's other watchers (with the user brief), never back to the sending socket."""
    server: ServerProcess = backend["server"]
    alice, bob = await asyncio.to_thread(user, backend), await asyncio.to_thread(user, backend)
    tid = (await asyncio.to_thread(new_thread, alice, backend["category"]))["thread"]["id"]
    a, b, guest = (await open_ws(server, alice.session_cookie), await open_ws(server, bob.session_cookie),
                   await open_ws(server))
    for ws in (a, b, guest):
        await ws.send({"type": "subscribe", "thread": tid})
        await ws.wait_for(lambda f: f["type"] == "presence" and f.get("thread") == tid)
    await a.send({"type": "typing", "thread": tid})
    for ws in (b, guest):
        got = await ws.wait_for(lambda f: f["type"] == "typing")
        brief = {k: alice.user[k] for k in ("id", "username", "display_name", "avatar_url")}  # type: ignore[index]
        assert got == {"type": "typing", "thread": tid, "user": brief}
    await a.send({"type": "ping", "id": "after-typing"})
    await a.wait_for(lambda f: f["type"] == "pong")
    await asyncio.sleep(0.5)
    assert a.of_type("typing") == []
    for ws in (a, b, guest):
        await ws.close()


async def test_typing_by_guest_or_outside_the_thread_is_an_error(backend: dict[str, Any]) -> None:
    """A guest's `typing` gets error `forbidden`; typing in an unsubscribed thread gets an error; both stay open."""
    server: ServerProcess = backend["server"]
    alice = await asyncio.to_thread(user, backend)
    tid = (await asyncio.to_thread(new_thread, alice, backend["category"]))["thread"]["id"]
    a, guest = await open_ws(server, alice.session_cookie), await open_ws(server)
    await a.send({"type": "subscribe", "thread": tid})
    await a.wait_for(lambda f: f["type"] == "subscribed")
    await guest.send({"type": "subscribe", "thread": tid})
    await guest.wait_for(lambda f: f["type"] == "subscribed")
    await guest.send({"type": "typing", "thread": tid})
    err = await guest.wait_for(lambda f: f["type"] == "error")
    assert err["code"] == "forbidden"
    other = (await asyncio.to_thread(new_thread, alice, backend["category"]))["thread"]["id"]
    await a.send({"type": "typing", "thread": other})
    err = await a.wait_for(lambda f: f["type"] == "error")
    assert err["code"] == "not_subscribed"
    await asyncio.sleep(0.3)
    assert a.of_type("typing") == [] and guest.of_type("typing") == []
    for ws in (a, guest):
        await ws.send({"type": "ping", "id": 1})
        await ws.wait_for(lambda f: f["type"] == "pong")
        await ws.close()


async def test_snapshots_are_coalesced_and_only_sent_on_change(backend: dict[str, Any]) -> None:
    """Twenty joins in a burst reach a watcher as at most a few site frames, about one a second, none when idle."""
    server: ServerProcess = backend["server"]
    watcher = await open_ws(server)
    await watcher.wait_for(lambda f: f["type"] == "presence")
    await asyncio.sleep(1.2)
    base = watcher.presence()[-1]["guests"]
    mark = len(watcher.frames)
    guests: list[Client] = []
    for _ in range(20):
        guests.append(await open_ws(server))
        await asyncio.sleep(0.05)
    await watcher.wait_for(lambda f: f["type"] == "presence" and f["guests"] == base + 20, start=mark)
    await asyncio.sleep(2.5)
    frames = [f for _, f in watcher.frames[mark:] if f["type"] == "presence"]
    assert 1 <= len(frames) <= 10, len(frames)  # coalesced: far fewer frames than joins
    assert frames[-1]["guests"] == base + 20  # and none after the last change, while idle
    every = [(ids(f), f["guests"]) for f in watcher.presence()]
    assert all(x != y for x, y in zip(every, every[1:], strict=False))  # a frame only when something changed
    for g in guests:
        await g.close()
    await watcher.close()


async def test_leaves_after_the_grace_period(backend: dict[str, Any]) -> None:
    """A user whose last tab closed stays listed for the grace period (2 s here), then leaves."""
    server: ServerProcess = backend["server"]
    alice = await asyncio.to_thread(user, backend)
    watcher = await open_ws(server)
    tab = await open_ws(server, alice.session_cookie)
    await watcher.wait_for(has(alice))
    mark = len(watcher.frames)
    closed = time.monotonic()
    await tab.close()
    await watcher.wait_for(lacks(alice), start=mark, timeout=GRACE + 30)
    gone_at = next(t for t, f in watcher.frames[mark:] if lacks(alice)(f)) - closed
    # Not before the grace period: a lower bound only, which a slow machine cannot break (it only delays).
    assert gone_at >= GRACE - 0.1, gone_at
    assert alice.user["id"] not in ids(await asyncio.to_thread(site, server))  # type: ignore[index]
    await watcher.close()
