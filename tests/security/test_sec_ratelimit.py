"""Rate limits: 429 with Retry-After on HTTP, shared by two processes through Redis; error then 1008 on /ws.
Sign-in failures are counted per (address, account), per address and per account, and nobody can lock an owner
out (issue 25, finding 3); an IPv6 client's limits are its /64's, sign-ups are limited per day too (finding 14).
Addresses are played with X-Forwarded-For from a trusted proxy (127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.config import RateLimits
from support.api import Api, new_thread, unique
from support.databases import clear_rate_limits, make_moderator, namespace
from support.processes import RedisServer, ServerProcess

LIMITS = RateLimits()
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def processes(pg_url: str, limits_redis: RedisServer,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two server processes with rate limits on, sharing the module's Redis, started once for the module (a
    start costs seconds of CPU; `pair` gives each test empty buckets instead of new processes)."""
    env = {"DATABASE_URL": pg_url, "REDIS_URL": limits_redis.url, "PARLEY_RATE_LIMITS": "on",
           "PARLEY_TRUSTED_PROXIES": "127.0.0.1/32", "PARLEY_DB_POOL_SIZE": "6",
           "PARLEY_RENDER_BUDGET_SECONDS": "10",  # as tests/conftest.py's RENDER_BUDGET
           "PARLEY_DATA_DIR": str(tmp_path_factory.mktemp("data")), "PARLEY_SECRET": "test-secret-0123456789abcdef"}
    a, b = ServerProcess(env), ServerProcess(env)
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()


@pytest.fixture()
def pair(processes: tuple[ServerProcess, ServerProcess], limits_redis: RedisServer,
         pg_url: str) -> tuple[ServerProcess, ServerProcess]:
    """The module's two processes, every rate-limit bucket emptied first: all the limiter keeps is under the
    forum's `<namespace>:rl:` in Redis (server/ratelimit.py), so each test starts as on a Redis of its own."""
    clear_rate_limits(limits_redis.url, pg_url)
    return processes


def from_(address: str) -> dict[str, str]:
    """The headers of a request from `address`, as the trusted proxy forwards it."""
    return {"X-Forwarded-For": address}


def sign_in(srv: Any, name: str, password: str, address: str) -> httpx.Response:
    return httpx.post(srv.url + "/api/session", json={"username": name, "password": password}, headers=from_(address))


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


def test_a_strangers_failures_never_lock_the_owner_out(pair: tuple[Any, Any], pg_url: str) -> None:
    """A stranger's wrong passwords for a moderator's account (spread over both processes) limit the stranger's
    address on that account (429, even with the right password, any spelling of the name), but the owner from
    another address signs in, and changes the password from a session, at once."""
    a, b = pair
    owner = Api(a.url).sign_up()
    name = owner.user["username"]  # type: ignore[index]
    make_moderator(pg_url, name)
    stranger = "203.0.113.7"
    for i in range(LIMITS.signin_failures_per_address_account[0]):
        r = sign_in(a if i % 2 else b, name, f"wrong-{i}-password", stranger)
        assert r.status_code == 401, r.text
    for srv in (a, b):
        assert_limited(sign_in(srv, name.upper(), PASSWORD, stranger))
    r = sign_in(b, name, PASSWORD, "198.51.100.20")
    assert r.status_code == 200, r.text
    r = owner.put("/api/me/password", json={"old_password": PASSWORD, "new_password": "a brand new password"})
    assert r.status_code == 200, r.text
    # The stranger's address is limited on that account only: another account from it still signs in.
    other = Api(b.url).sign_up()
    assert sign_in(a, other.user["username"], PASSWORD, stranger).status_code == 200  # type: ignore[index]


def test_many_addresses_guessing_one_account_are_bounded(pair: tuple[Any, Any]) -> None:
    """Once an account has had its allowance of failures from many addresses, every address that failed on
    it is refused (429) and a new address gets one wrong try before it is too; the owner's right password from
    an address that has not failed still signs in."""
    a, b = pair
    name = Api(a.url).sign_up().user["username"]  # type: ignore[index]
    per_address = 5  # under the per-(address, account) and per-address allowances
    guessers = [f"192.0.2.{n}" for n in range(1, LIMITS.signin_failures_per_account[0] // per_address + 1)]
    for n, address in enumerate(guessers):
        for i in range(per_address):
            r = sign_in(a if (n + i) % 2 else b, name, f"guess-{n}-{i}-wrong", address)
            assert r.status_code == 401, r.text
    for address in guessers[:3]:
        assert_limited(sign_in(b, name, PASSWORD, address))
    assert sign_in(a, name, "another wrong guess", "192.0.2.200").status_code == 401
    assert_limited(sign_in(b, name, "one more wrong guess", "192.0.2.200"))
    r = sign_in(a, name, PASSWORD, "198.51.100.30")
    assert r.status_code == 200, r.text


def test_ipv6_clients_are_limited_by_their_64(pair: tuple[Any, Any]) -> None:
    """Sign-ups from addresses of one IPv6 /64 share one bucket (the 11th is 429 from yet another address in
    it), another /64 has its own; an IPv4-mapped IPv6 address shares the IPv4 address's bucket."""
    a, b = pair
    cap = LIMITS.signup_per_ip[0]

    def sign_up(srv: Any, address: str) -> httpx.Response:
        return httpx.post(srv.url + "/api/users", json={"username": unique(), "password": PASSWORD},
                          headers=from_(address))

    for i in range(cap):
        r = sign_up(a if i % 2 else b, f"2001:db8:1:2::{i + 1:x}" if i % 3 else f"2001:db8:1:2:{i:x}:ff:ee:1")
        assert r.status_code == 201, r.text
    assert_limited(sign_up(a, "2001:db8:1:2:ffff:ffff:ffff:fffe"))
    assert sign_up(b, "2001:db8:1:3::1").status_code == 201
    for i in range(cap):
        assert sign_up(a if i % 2 else b, "198.51.100.7").status_code == 201
    assert_limited(sign_up(a, "::ffff:198.51.100.7"))


def test_signups_are_limited_per_address_and_day(pair: tuple[Any, Any], pg_url: str,
                                                 limits_redis: RedisServer) -> None:
    """Besides the hourly bucket, sign-ups have a daily one per address: with it emptied (as a day's
    allowance of sign-ups leaves it), the next sign-up from that address is 429 though the hour's bucket is
    full, and another address signs up."""
    a, _ = pair
    client = redis.Redis.from_url(limits_redis.url)
    client.hset(f"{namespace(pg_url)}:rl:signup:day:203.0.113.99", mapping={"t": 0, "ts": time.time()})
    client.close()
    r = httpx.post(a.url + "/api/users", json={"username": unique(), "password": PASSWORD},
                   headers=from_("203.0.113.99"))
    assert_limited(r)
    assert int(r.headers["retry-after"]) > 3600  # a day's bucket refills slowly
    r = httpx.post(a.url + "/api/users", json={"username": unique(), "password": PASSWORD},
                   headers=from_("203.0.113.100"))
    assert r.status_code == 201, r.text


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


FLOOD_KINDS: dict[str, Any] = {
    "binary": b'{"type":"ping"}',
    "bad_json": '{"type":',
    "unknown_type": '{"type":"nonsense"}',
    "invalid": '{"type":"subscribe","feed":"all\\n"}',
    "binary_empty": b"",
}


async def flood_frame(ws: Any, kind: str, i: int) -> None:
    """One frame (or message) of the given kind; `mixed` cycles through all of them."""
    kinds = [*FLOOD_KINDS, "ping", "pong", "fragments"]
    if kind == "mixed":
        kind = kinds[i % len(kinds)]
    if kind == "ping":
        await ws.ping(str(i))  # a control frame: websockets answers it below the app
    elif kind == "pong":
        await ws.pong(str(i))  # unsolicited
    elif kind == "fragments":  # one text message in 40 continuation frames
        text = '{"type":"ping","id":"' + "x" * 60 + '"}'
        await ws.send(iter([text[k:k + 2] for k in range(0, len(text), 2)]))
    else:
        await ws.send(FLOOD_KINDS[kind])


async def test_every_kind_of_frame_counts_toward_the_flood_limit(pair: tuple[Any, Any]) -> None:
    """Binary frames, bad JSON, unknown types, invalid frames, pings, unsolicited pongs and the continuation
    frames of a fragmented message all take from the socket's bucket: a flood of any of them (or of a mix)
    gets `rate_limited` and a close with 1008, after at most about a bucket of error replies."""
    srv, _ = pair
    for kind in [*FLOOD_KINDS, "ping", "pong", "fragments", "mixed"]:
        async with connect(srv.url.replace("http", "ws", 1) + "/ws", ping_interval=None) as ws:
            await ws.recv()
            for i in range(LIMITS.ws_frames[0] * 4):
                try:
                    await flood_frame(ws, kind, i)
                except ConnectionClosed:
                    break
            messages = []
            try:
                while True:
                    messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            except ConnectionClosed:
                pass
            except TimeoutError:
                pytest.fail(f"{kind}: the flood was never closed ({len(messages)} replies)")
            assert ws.close_code == 1008, (kind, ws.close_code)
        errors = [m for m in messages if m["type"] == "error"]
        assert errors and errors[-1]["code"] == "rate_limited", (kind, errors[-3:])
        assert len(errors) <= LIMITS.ws_frames[0] + 40, (kind, len(errors))


def drain(send: Any, capacity: int) -> int:
    """Send until the first 429 (at most twice the capacity); the number of requests that passed."""
    for n in range(capacity * 2):
        r = send(n)
        if r.status_code == 429:
            assert_limited(r)
            return n
        assert r.status_code < 400 or r.status_code == 404, (n, r.status_code, r.text)
    pytest.fail(f"no 429 after {capacity * 2} requests")


def test_every_write_has_a_per_user_bucket(pair: tuple[Any, Any], pg_url: str) -> None:
    """Read positions, marking notifications read, and the moderators' writes (categories, settling flags,
    suspensions: one bucket) each pass their bucket's capacity, then answer 429; another user is not affected."""
    srv, _ = pair
    mod = Api(srv.url).sign_up()
    make_moderator(pg_url, mod.user["username"])
    slug = unique("lim-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Limits"}).status_code == 201
    tid = new_thread(mod, slug)["thread"]["id"]
    reader, other = Api(srv.url).sign_up(), Api(srv.url).sign_up()
    cap = LIMITS.read_per_user[0]
    assert drain(lambda n: reader.put(f"/api/threads/{tid}/read", json={"seq": 1}), cap) >= cap
    assert other.put(f"/api/threads/{tid}/read", json={"seq": 1}).status_code == 204
    cap = LIMITS.notifications_read_per_user[0]
    assert drain(lambda n: reader.post("/api/notifications/read", json={"all": True}), cap) >= cap
    assert other.post("/api/notifications/read", json={"all": True}).status_code == 200
    cap = LIMITS.moderation_per_user[0]
    assert drain(lambda n: mod.put("/api/flags/9000000000", json={"status": "dismissed"}), cap) >= cap - 1
    assert_limited(mod.post("/api/categories", json={"slug": unique("lim-"), "name": "More"}))
    assert_limited(mod.put(f"/api/users/{other.user['username']}/suspension", json={"until": None}))
