"""Search's bounded work (issue 25): adversarial queries answer results or 422 field q and leave nothing running in
PostgreSQL, snippets keep the first word, a search over its time budget is 422 q, a client that hangs up cancels its
query, rate limits per address and per user, and a process runs only a few searches at once."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from api_support import POST, check_error, posted
from server.config import RateLimits
from server.store import search as store
from support.api import Api, new_thread
from support.databases import create_database, db_fetch, db_name, drop_database

LIMITS = RateLimits()
# The rate-limited server (tests/conftest.py `limited`) sits behind a trusted proxy: X-Forwarded-For is the address.
LIMITED_ENV = {"PARLEY_TRUSTED_PROXIES": "127.0.0.1/32"}
KA_MO = " ".join(["ka", "mo"] * 3333)  # 19,997 characters: the finding's body
MARK = re.compile(r"</?mark>")


def word() -> str:
    """A word no other test uses: letters only, so the parser keeps it whole."""
    return "zq" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


def distinct_words(n: int) -> list[str]:
    """n short words that stem to themselves and are no stop words."""
    return ["w" + chr(97 + i // 26) + chr(97 + i % 26) for i in range(n)]


def running_searches(url: str) -> list[Any]:
    """Statements of a search (the ones matching @@) PostgreSQL is running on this database for any server."""
    return db_fetch(url, "SELECT pid, state, wait_event_type, query FROM pg_stat_activity WHERE datname = $1"
                         " AND pid <> pg_backend_pid() AND state <> 'idle' AND query LIKE '%search @@%'",
                    db_name(url))


def search_ok_or_too_much(r: httpx.Response) -> None:
    """200 with results, or 422 naming q."""
    if r.status_code == 422:
        check_error(r, 422, field="q")
        return
    assert r.status_code == 200, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"results", "next"}
    for result in body["results"]:
        assert set(result) == {"post", "thread", "snippet"} and set(result["post"]) == POST


@pytest.fixture(scope="module")
def long_posts(server: Any, forum: dict[str, Any]) -> dict[str, Any]:
    """Twenty-thousand-character posts built to be costly: "ka mo" repeated, and 40 distinct words cycled; a thread
    titled with "ka mo" too. Returns {author, category}."""
    alice = Api(server.url).sign_up()
    many = " ".join(distinct_words(40)[i % 40] for i in range(5000))[:19990]
    tid = new_thread(alice, forum["category"], title=" ".join(["ka", "mo"] * 33), body=KA_MO)["thread"]["id"]
    for _ in range(3):
        posted(alice, tid, KA_MO)
        posted(alice, tid, many)
    return {"author": alice.user["username"], "category": forum["category"]}  # type: ignore[index]


def test_adversarial_queries_answer_results_or_422_and_leave_nothing_running(server, pg_url, long_posts):
    """Long repeated phrases, many OR terms, negations, distinct words, stop words, unicode, against long posts and
    titles, in both orders, with filters and cursors: each answers 200 or 422 field q, and no search runs on."""
    words = distinct_words(40)
    phrase = lambda n: '"' + " ".join((["ka", "mo"] * n)[:n]) + '"'  # noqa: E731
    queries = [
        phrase(13), phrase(16), phrase(17), phrase(66),
        "ka mo", "ka", "ka " * 60, " or ".join(words[:16]), " or ".join(words[:40]),
        "ka " + " ".join("-" + w for w in words[:15]), " ".join("-" + w for w in words[:40]),
        " ".join(words[:16]), " ".join(words[:40]), '"' + " ".join(words[:16]) + '"', '"' + " ".join(words) + '"',
        "the of and a to in", '"the the the"', "東京 éclair Straße 😀 مرحبا",
        '"ka mo" -"mo ka" or (ka) !!! & | :* <-> <2>', "ka-mo-ka-mo-ka-mo-ka-mo-ka-mo-ka-mo",
    ]
    filters: list[dict[str, str]] = [{}, {"sort": "newest"}, {"category": long_posts["category"]},
                                     {"author": long_posts["author"], "sort": "newest"}]
    with httpx.Client(base_url=server.url, timeout=15) as http:
        for q in queries:
            for extra in filters:
                params = {"q": q[:200], "limit": "2", **extra}
                r = http.get("/api/search", params=params)
                search_ok_or_too_much(r)
                if r.status_code == 200 and r.json()["next"]:  # the next page too
                    search_ok_or_too_much(http.get("/api/search", params={**params, "before": r.json()["next"]}))
        # The finding's query finds the long posts, each snippet a short excerpt with its words marked.
        r = http.get("/api/search", params={"q": phrase(13), "category": long_posts["category"]})
        assert r.status_code == 200 and len(r.json()["results"]) == 4, r.text[:300]
        for result in r.json()["results"]:
            assert "<mark>ka</mark> <mark>mo</mark>" in result["snippet"]
            assert len(MARK.sub("", result["snippet"])) <= store.SNIPPET
    assert running_searches(pg_url) == []


def test_too_many_search_words_is_422_q(server):
    """More than MAX_TERMS search words (stop words aside, repeats and exclusions included) is 422 field q; at the
    limit the search runs."""
    words = distinct_words(store.MAX_TERMS + 1)
    url = server.url + "/api/search"
    for q in (" ".join(words), '"' + " ".join(words) + '"', " or ".join(words), "x " + " ".join("-" + w for w in words),
              " ".join(["ka"] * (store.MAX_TERMS + 1))):
        err = check_error(httpx.get(url, params={"q": q}), 422, field="q")
        assert str(store.MAX_TERMS) in err["message"]
    assert httpx.get(url, params={"q": " ".join(words[:-1]) + " the of"}).status_code == 200


def test_snippet_keeps_the_first_word_marks_matches_and_escapes_the_rest(server, forum):
    """A snippet is an excerpt of the body from its first word when the match is near the start, around the match
    when it is deep in a long body; the matching words are in <mark>, everything else escaped text."""
    alice = Api(server.url).sign_up()
    w, deep, title_only = word(), word(), word()
    near = f"The {w} is on. I think it boils"
    filler = "plain words without the sought one, " * 420
    far = f"A start. {filler} <b>bold</b> & 'quoted' {deep} \"here\" {filler}"[:20000]
    new_thread(alice, forum["category"], title=f"About {title_only}", body=near)
    new_thread(alice, forum["category"], body=far)
    snippet = lambda q: httpx.get(server.url + "/api/search", params={"q": q}).json()["results"][0]["snippet"]  # noqa
    assert snippet(w) == f"The <mark>{w}</mark> is on. I think it boils"
    assert snippet(title_only) == html.escape(near)  # the title matched: the body from its start
    got = snippet(deep)
    assert f"<mark>{deep}</mark>" in got and "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quoted&#x27;" in got, got
    text = html.unescape(MARK.sub("", got))
    assert text in far and len(text) <= store.SNIPPET, got
    assert "<" not in MARK.sub("", got) and ">" not in MARK.sub("", got)


# --- Time budget, hang-ups and slots: a lock on posts holds a search in PostgreSQL for as long as the test likes.

@pytest.fixture(scope="module")
def own_db(pg_admin_url: str) -> Iterator[str]:
    """A database of this module's own, so that locking its posts table stops no other test."""
    url = create_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


class PostsLocked:
    """`async with PostsLocked(url):` holds ACCESS EXCLUSIVE on posts: any search waits on it inside PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> PostsLocked:
        self.conn = await asyncpg.connect(self.url)
        self.tx = self.conn.transaction()
        await self.tx.start()
        await self.conn.execute("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.tx.rollback()
        await self.conn.close()


async def wait_for(check: Any, what: str, seconds: float = 15) -> Any:
    """Poll `check()` (a sync function) until it is truthy; fail naming `what` after `seconds`."""
    for _ in range(int(seconds / 0.05)):
        value = await asyncio.to_thread(check)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_search_over_its_time_budget_is_422_q(spawn, own_db):
    """A search PostgreSQL cannot finish within PARLEY_SEARCH_TIMEOUT_SECONDS is cancelled there and answered 422
    field q; the server then searches normally."""
    srv = spawn(DATABASE_URL=own_db, PARLEY_SEARCH_TIMEOUT_SECONDS="0.3")
    async with httpx.AsyncClient(base_url=srv.url, timeout=20) as http:
        async with PostsLocked(own_db):
            r = await http.get("/api/search", params={"q": "kettle"})
        err = check_error(r, 422, code="query_too_costly", field="q")
        assert "too long" in err["message"]
        assert running_searches(own_db) == []
        for _ in range(8):  # more than the pool: every connection went back to it
            assert (await http.get("/api/search", params={"q": "kettle"})).status_code == 200


async def test_a_client_that_hangs_up_cancels_its_search_in_postgresql(spawn, own_db):
    """When the client closes its socket, the search it asked for stops running in PostgreSQL at once (not when the
    query would have ended), and the server keeps answering searches."""
    srv = spawn(DATABASE_URL=own_db, PARLEY_SEARCH_TIMEOUT_SECONDS="60")
    async with PostsLocked(own_db):
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(f"GET /api/search?q=kettle HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n\r\n".encode())
        await writer.drain()
        running = await wait_for(lambda: running_searches(own_db), "the search to wait on the lock")
        assert running[0]["wait_event_type"] == "Lock"
        writer.close()
        await wait_for(lambda: running_searches(own_db) == [], "the search to be cancelled after the hang-up")
    async with httpx.AsyncClient(base_url=srv.url, timeout=20) as http:
        for _ in range(8):
            assert (await http.get("/api/search", params={"q": "kettle"})).status_code == 200
        assert (await http.get("/healthz")).status_code == 200


async def test_a_process_runs_few_searches_at_once_and_sheds_the_rest(spawn, own_db):
    """With every search slot of a process taken (a quarter of its pool), one more search is 429 with Retry-After
    instead of waiting for a connection; the held ones then finish."""
    srv = spawn(DATABASE_URL=own_db, PARLEY_SEARCH_TIMEOUT_SECONDS="60", PARLEY_DB_POOL_SIZE="8")
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as http:
        async with PostsLocked(own_db):
            held = [asyncio.create_task(http.get("/api/search", params={"q": "kettle"})) for _ in range(2)]
            await wait_for(lambda: len(running_searches(own_db)) == 2, "two searches to wait on the lock")
            r = await http.get("/api/search", params={"q": "kettle"})
            check_error(r, 429, code="rate_limited")
            assert int(r.headers["retry-after"]) >= 1
            assert (await http.get("/api/categories")).status_code == 200  # the rest of the site has its connections
        assert [(await t).status_code for t in held] == [200, 200]


# --- Rate limits --------------------------------------------------------------------------------------------

def passed_until_limited(search: Callable[[int], httpx.Response], rule: tuple[int, float]) -> httpx.Response:
    """Searches until the first 429 and returns it, checking that the bucket let its capacity through and no more
    than it refilled meanwhile (a loaded machine is slow: every second spent refills `rule[1]` tokens)."""
    capacity, rate = rule
    started, passed = time.monotonic(), 0
    while (r := search(passed)).status_code != 429:
        assert r.status_code == 200, r.text
        passed += 1
        assert passed <= capacity + (time.monotonic() - started) * rate + 1, f"{passed} searches, never limited"
    assert passed >= capacity, f"limited after {passed} searches, the bucket holds {capacity}"
    return r


def test_guest_searches_are_limited_per_address(limited):
    """A guest's searches from one address pass up to the bucket's capacity, then 429 with Retry-After; another
    address is not affected."""
    with httpx.Client(base_url=limited.url, timeout=15) as http:
        search = lambda ip: http.get("/api/search", params={"q": "kettle"}, headers={"X-Forwarded-For": ip})  # noqa
        r = passed_until_limited(lambda _: search("203.0.113.7"), LIMITS.search_per_ip)
        check_error(r, 429, code="rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        assert search("203.0.113.8").status_code == 200


def test_a_users_searches_are_limited_whatever_the_address(limited):
    """A signed-in user's searches are counted per user: from a new address each time, the bucket's capacity passes,
    the next one is 429; a guest at yet another address still searches."""
    user = Api(limited.url).sign_up()
    r = passed_until_limited(lambda i: user.get("/api/search", params={"q": "kettle"},
                                                headers={"X-Forwarded-For": f"198.51.{100 + i // 250}.{i % 250 + 1}"}),
                             LIMITS.search_per_user)
    check_error(r, 429, code="rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    guest = httpx.get(limited.url + "/api/search", params={"q": "kettle"},
                      headers={"X-Forwarded-For": "192.0.2.201"})
    assert guest.status_code == 200
