"""The reply path's session cache (server/sessioncache.py) never lets a reply through that a fresh lookup would
refuse, and never refuses one that a fresh lookup would allow: checked against real server processes sharing one
database, the session or the user changed by another process or by hand in SQL between two replies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from server.config import RateLimits
from support.api import Api, new_thread, unique
from support.databases import db_fetch, db_fetchval, make_moderator

PASSWORD = "correct horse battery"


def cache_count(url: str, result: str) -> float:
    """The server's parley_session_cache counter for `result` (hit, miss, stale)."""
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(f'parley_session_cache_total{{result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


def posts_by(pg_url: str, user_id: int) -> int:
    return int(db_fetchval(pg_url, "SELECT count(*) FROM posts WHERE author_id = $1", user_id))


def a_thread(url: str, pg_url: str) -> tuple[Api, int]:
    """A moderator (signed in) and a thread of theirs in a new category, on the server at `url`."""
    mod = Api(url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Cache"}).status_code == 201
    return mod, new_thread(mod, slug)["thread"]["id"]


@pytest.fixture()
def forum(spawn: Any, pg_url: str) -> tuple[Any, Any, int]:
    """Two server processes on one database, and a thread to answer."""
    a, b = spawn(), spawn()
    return a, b, a_thread(a.url, pg_url)[1]


def reply(url: str, cookie: str, tid: int, body: str = "an answer", **extra: Any) -> httpx.Response:
    return httpx.post(f"{url}/api/threads/{tid}/posts", json={"body": body, **extra},
                      headers={"Cookie": f"parley_session={cookie}"})


def test_replies_use_the_cache_and_a_sign_out_elsewhere_stops_the_next_one(forum: Any, pg_url: str) -> None:
    """A second reply is served from the cache (a hit); after signing out on another process, the next reply on
    the caching process is 401 and writes nothing."""
    a, b, tid = forum
    member = Api(a.url).sign_up()
    uid, cookie = member.user["id"], member.session_cookie  # type: ignore[index]
    hits = cache_count(a.url, "hit")
    assert reply(a.url, cookie, tid).status_code == 201
    assert reply(a.url, cookie, tid).status_code == 201
    assert cache_count(a.url, "hit") > hits
    assert httpx.delete(b.url + "/api/session", headers={"Cookie": f"parley_session={cookie}"}).status_code == 204
    before = posts_by(pg_url, uid)
    r = reply(a.url, cookie, tid)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
    assert posts_by(pg_url, uid) == before


@pytest.mark.parametrize("change", [
    "DELETE FROM sessions WHERE user_id = $1",
    "UPDATE users SET credential_epoch = credential_epoch + 1 WHERE id = $1",
    "UPDATE users SET suspended_until = now() + interval '1 day' WHERE id = $1",
])
def test_a_session_ended_by_hand_stops_the_cached_reply(forum: Any, pg_url: str, change: str) -> None:
    """A session deleted, a credential epoch raised or a suspension made in SQL (no process told) stops the next
    reply of a cached session: 401, and nothing written, neither a response nor a comment."""
    a, _, tid = forum
    member = Api(a.url).sign_up()
    uid, cookie = member.user["id"], member.session_cookie  # type: ignore[index]
    first = reply(a.url, cookie, tid)
    assert first.status_code == 201
    assert reply(a.url, cookie, tid).status_code == 201  # cached now
    db_fetch(pg_url, change, uid)
    before = posts_by(pg_url, uid)
    assert reply(a.url, cookie, tid).status_code == 401
    comment = reply(a.url, cookie, tid, "a comment", parent_id=first.json()["post"]["id"])
    assert comment.status_code == 401, comment.text
    assert posts_by(pg_url, uid) == before


def test_a_silence_by_hand_refuses_and_its_lifting_allows_at_once(forum: Any, pg_url: str) -> None:
    """Silenced in SQL after a cached reply: the next reply is 403 `silenced` (the statement saw the row change);
    lifted in SQL: the next reply is 201 at once (a refusal from a cached row is not believed)."""
    a, _, tid = forum
    member = Api(a.url).sign_up()
    uid, cookie = member.user["id"], member.session_cookie  # type: ignore[index]
    assert reply(a.url, cookie, tid).status_code == 201
    assert reply(a.url, cookie, tid).status_code == 201
    db_fetch(pg_url, "UPDATE users SET silenced_at = now() WHERE id = $1", uid)
    r = reply(a.url, cookie, tid)
    assert r.status_code == 403 and r.json()["error"]["code"] == "silenced", r.text
    db_fetch(pg_url, "UPDATE users SET silenced_at = NULL WHERE id = $1", uid)
    assert reply(a.url, cookie, tid).status_code == 201


def test_an_idempotent_retry_of_a_signed_out_session_is_refused(forum: Any, pg_url: str) -> None:
    """A reply with an Idempotency-Key, then a sign-out on another process: the same request again (a replay the
    cache would answer from its key) is 401, and its key answers nothing."""
    a, b, tid = forum
    member = Api(a.url).sign_up()
    cookie = member.session_cookie
    headers = {"Cookie": f"parley_session={cookie}", "Idempotency-Key": unique("k-")}
    first = httpx.post(f"{a.url}/api/threads/{tid}/posts", json={"body": "once"}, headers=headers)
    assert first.status_code == 201
    again = httpx.post(f"{a.url}/api/threads/{tid}/posts", json={"body": "once"}, headers=headers)
    assert again.status_code == 200 and again.json()["post"]["id"] == first.json()["post"]["id"]
    assert httpx.delete(b.url + "/api/session", headers={"Cookie": f"parley_session={cookie}"}).status_code == 204
    late = httpx.post(f"{a.url}/api/threads/{tid}/posts", json={"body": "once"}, headers=headers)
    assert late.status_code == 401, late.text


def test_a_changed_row_is_read_again_and_the_reply_made_once(forum: Any, pg_url: str) -> None:
    """Any change of the users row (here a reputation set by hand) makes the cached reply stale: it is made once,
    from a fresh lookup (the stale counter moves by one, exactly one post is written)."""
    a, _, tid = forum
    member = Api(a.url).sign_up()
    uid, cookie = member.user["id"], member.session_cookie  # type: ignore[index]
    assert reply(a.url, cookie, tid).status_code == 201
    db_fetch(pg_url, "UPDATE users SET reputation = reputation + 5 WHERE id = $1", uid)
    stale, before = cache_count(a.url, "stale"), posts_by(pg_url, uid)
    r = reply(a.url, cookie, tid, "after the change")
    assert r.status_code == 201, r.text
    assert cache_count(a.url, "stale") == stale + 1
    assert posts_by(pg_url, uid) == before + 1


def test_the_cache_can_be_turned_off(spawn: Any, pg_url: str) -> None:
    """PARLEY_SESSION_CACHE_SIZE=0: replies look their session up each time (no hit, no miss counted)."""
    srv = spawn(PARLEY_SESSION_CACHE_SIZE="0")
    mod, tid = a_thread(srv.url, pg_url)
    for _ in range(2):
        assert reply(srv.url, mod.session_cookie, tid).status_code == 201
    assert cache_count(srv.url, "hit") == 0 and cache_count(srv.url, "miss") == 0


def test_a_reply_run_again_spends_one_token(spawn: Any, pg_url: str) -> None:
    """With rate limits on, replies whose cached row is made stale before them (so they run twice) still get the
    post bucket's whole capacity before a 429: the second run spends no token."""
    capacity, _ = RateLimits().post_per_user
    srv = spawn(PARLEY_RATE_LIMITS="on")
    _, tid = a_thread(srv.url, pg_url)
    member = Api(srv.url).sign_up()
    uid, cookie = member.user["id"], member.session_cookie  # type: ignore[index]
    stale, passed = cache_count(srv.url, "stale"), 0
    while True:
        if passed:  # the first reply fills the cache; the row then changes before each later one
            db_fetch(pg_url, "UPDATE users SET reputation = reputation + 1 WHERE id = $1", uid)
        r = reply(srv.url, cookie, tid, f"reply {passed}")
        if r.status_code != 201:
            break
        passed += 1
        assert passed <= 3 * capacity, "never limited"
    assert r.status_code == 429, r.text
    # A stale entry is dropped and the run again looks the session up without caching it, so the next reply fills
    # the cache afresh: every other reply runs twice. Charged twice, those would end the bucket after ~2/3 of it.
    assert cache_count(srv.url, "stale") - stale >= passed // 2 - 1
    assert passed >= capacity, f"only {passed} of {capacity} passed: a run again spent a second token"
