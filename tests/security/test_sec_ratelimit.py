"""Rate limits: 429 with Retry-After on HTTP, shared by two processes through Redis; error then 1008 on /ws."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.config import RateLimits
from support.api import Api, new_thread, unique
from support.databases import make_moderator

LIMITS = RateLimits()
PASSWORD = "correct horse battery"


@pytest.fixture()
def pair(spawn: Any, own_redis: Any) -> tuple[Any, Any]:
    """Two server processes with rate limits on, sharing a Redis of their own (so no other test's buckets)."""
    a = spawn(PARLEY_RATE_LIMITS="on", REDIS_URL=own_redis.url)
    b = spawn(PARLEY_RATE_LIMITS="on", REDIS_URL=own_redis.url)
    return a, b


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, (r.status_code, r.text)
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1


def until_limited(send: Callable[[int], httpx.Response], ok: int, bucket: tuple[int, float]) -> int:
    """Calls send(0), send(1), … until one is refused with 429; returns how many passed (status `ok`). At
    least the bucket's capacity passes, and at most that plus what the bucket refilled meanwhile (a busy
    machine is slower, so it refills more): the bound grows with the time taken, the check does not depend
    on it. A caller alternating between two processes that did not share the bucket would pass twice the
    capacity, far past the bound."""
    capacity, rate = bucket
    start, passed = time.monotonic(), 0
    while True:
        r = send(passed)
        if r.status_code != ok:
            break
        passed += 1
        assert passed <= capacity + rate * (time.monotonic() - start) + 1, "not limited"
    assert_limited(r)
    assert passed >= capacity
    return passed


def test_signup_limit_is_shared_across_processes(pair: tuple[Any, Any]) -> None:
    """Sign-ups per IP are counted across both processes: the bucket's capacity passes, the next is 429."""
    a, b = pair
    cap = LIMITS.signup_per_ip[0]
    for i in range(cap):
        srv = a if i % 2 else b
        r = httpx.post(srv.url + "/api/users", json={"username": unique(), "password": PASSWORD})
        assert r.status_code == 201, r.text
    for srv in (a, b):
        assert_limited(httpx.post(srv.url + "/api/users", json={"username": unique(), "password": PASSWORD}))


def test_signin_failures_back_off_the_account(pair: tuple[Any, Any]) -> None:
    """After the failure allowance for one username (spread over both processes), even the right password is 429."""
    a, b = pair
    user = Api(a.url).sign_up()
    name = user.user["username"]  # type: ignore[index]
    for i in range(LIMITS.signin_failures_per_user[0]):
        srv = a if i % 2 else b
        r = httpx.post(srv.url + "/api/session", json={"username": name, "password": f"wrong-{i}-password"})
        assert r.status_code == 401, r.text
    for srv in (a, b):
        assert_limited(httpx.post(srv.url + "/api/session", json={"username": name.upper(), "password": PASSWORD}))
    # Another account from the same address is not locked by it.
    other = Api(b.url).sign_up()
    r = httpx.post(a.url + "/api/session", json={"username": other.user["username"], "password": PASSWORD})
    assert r.status_code == 200, r.text


def test_signin_limit_per_ip(pair: tuple[Any, Any]) -> None:
    """Sign-in attempts per IP (any usernames) are limited across both processes."""
    a, b = pair
    until_limited(lambda i: httpx.post((a if i % 2 else b).url + "/api/session",
                                       json={"username": unique(), "password": "whatever-password"}),
                  401, LIMITS.signin_per_ip)


def test_posting_and_voting_limits_shared_across_processes(pair: tuple[Any, Any], pg_url: str) -> None:
    """Replies and votes per user hit 429 with Retry-After at the bucket's capacity, counted on both processes."""
    a, b = pair
    mod = Api(a.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Limits"}).status_code == 201
    thread_id = new_thread(mod, slug)["thread"]["id"]
    poster_a = Api(a.url).sign_up()
    poster_b = Api(b.url)
    poster_b.http.headers["Cookie"] = f"parley_session={poster_a.session_cookie}"
    post_ids = []

    def reply(i: int) -> httpx.Response:
        r = (poster_a if i % 2 else poster_b).post(f"/api/threads/{thread_id}/posts", json={"body": f"reply {i}"})
        if r.status_code == 201:
            post_ids.append(r.json()["post"]["id"])
        return r
    passed = until_limited(reply, 201, LIMITS.post_per_user)
    # Nothing was written by the refused request.
    page = mod.get(f"/api/threads/{thread_id}", params={"limit": 200}).json()
    assert len(page["responses"]) == passed
    voter_a = Api(a.url).sign_up()
    voter_b = Api(b.url)
    voter_b.http.headers["Cookie"] = f"parley_session={voter_a.session_cookie}"
    until_limited(lambda i: (voter_a if i % 2 else voter_b).put(f"/api/posts/{post_ids[i % len(post_ids)]}/vote",
                                                                json={"value": i % 3 - 1}),
                  200, LIMITS.vote_per_user)


def test_thread_creation_limit(pair: tuple[Any, Any], pg_url: str) -> None:
    """Starting threads is limited per user (a smaller bucket than replies)."""
    a, b = pair
    mod = Api(a.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Limits"}).status_code == 201
    until_limited(lambda i: mod.post("/api/threads", json={"category": slug, "title": f"again {i}", "body": "again"}),
                  201, LIMITS.thread_per_user)


async def test_ws_frame_flood_gets_error_then_1008(pair: tuple[Any, Any]) -> None:
    """A socket that floods frames gets an error frame `rate_limited`, then a close with 1008; a new socket works."""
    a, _ = pair
    async with connect(a.ws_url) as ws:
        await ws.recv()
        for i in range(LIMITS.ws_frames[0] * 3):
            try:
                await ws.send(json.dumps({"type": "ping", "id": i}))
            except ConnectionClosed:
                break
        messages = []
        with pytest.raises(ConnectionClosed):
            while True:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        assert ws.close_code == 1008
    errors = [m for m in messages if m["type"] == "error"]
    assert errors and errors[-1]["code"] == "rate_limited"
    pongs = [m for m in messages if m["type"] == "pong"]
    assert LIMITS.ws_frames[0] - 5 <= len(pongs) <= LIMITS.ws_frames[0] + 20
    async with connect(a.ws_url) as ws:
        await ws.recv()
        await ws.send('{"type":"ping","id":"fresh"}')
        while (msg := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "pong":
            pass
        assert msg["id"] == "fresh"
