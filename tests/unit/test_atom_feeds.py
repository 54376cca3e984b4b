"""Atom feeds (server/api/feeds.py): valid Atom 1.0 (feedparser and RFC 4287's required elements), newest 50,
ETag and 304, 404 for what is gone."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import asyncpg
import feedparser
import pytest

from support import http
from support.api import Api, new_thread

A = "{http://www.w3.org/2005/Atom}"


def valid_atom(body: bytes) -> ET.Element:
    """The feed, after checking it parses as Atom 1.0 and has what RFC 4287 requires of a feed and entries."""
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    root = ET.fromstring(body)
    assert root.tag == f"{A}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{A}{name}")) == 1, name
    assert root.find(f"{A}link[@rel='self']") is not None
    for entry in root.findall(f"{A}entry"):
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{A}{name}")) == 1, name
        assert entry.find(f"{A}author/{A}name").text  # every entry has an author: the feed needs none
        assert entry.find(f"{A}link[@rel='alternate']") is not None
        assert entry.find(f"{A}content").get("type") == "html"
    return root


def fetch(url: str) -> tuple[ET.Element, str]:
    r = http.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/atom+xml; charset=utf-8"
    return valid_atom(r.content), r.headers["etag"]


def titles(root: ET.Element) -> list[str]:
    return [e.findtext(f"{A}title") for e in root.findall(f"{A}entry")]


def test_latest_and_category_feeds_list_newest_threads(server, forum):
    """/feeds/latest.atom and /feeds/c/SLUG.atom list threads newest created first, a category with its children."""
    mod = forum["mod"]
    child = f"{forum['category']}-kid"
    assert mod.post("/api/categories", json={"slug": child, "name": "Kid", "parent": forum["category"]}
                    ).status_code == 201
    alice = Api(server.url).sign_up()
    first = new_thread(alice, forum["category"], title="Feed first", body="the **first** one")
    second = new_thread(alice, child, title="Feed second & <last>")
    root, _ = fetch(f"{server.url}/feeds/latest.atom")
    assert titles(root)[:2] == ["Feed second & <last>", "Feed first"]
    root, _ = fetch(f"{server.url}/feeds/c/{forum['category']}.atom")
    assert titles(root)[:2] == ["Feed second & <last>", "Feed first"]
    entry = root.findall(f"{A}entry")[1]
    assert entry.findtext(f"{A}content") == first["question"]["html"]
    assert entry.find(f"{A}link").get("href") == f"{server.url}/t/{first['thread']['id']}/feed-first"
    root, _ = fetch(f"{server.url}/feeds/c/{child}.atom")
    assert titles(root) == ["Feed second & <last>"]
    assert second["thread"]["id"] > first["thread"]["id"]


def test_thread_feed_lists_posts_newest_first_and_drops_deleted(server, forum):
    """/feeds/t/ID.atom lists the thread's live posts newest first; a deleted post leaves it."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    t = new_thread(alice, forum["category"], title="Tea")
    tid = t["thread"]["id"]
    r1 = bob.post(f"/api/threads/{tid}/posts", json={"body": "green"}).json()["post"]
    r2 = bob.post(f"/api/threads/{tid}/posts", json={"body": "black"}).json()["post"]
    alice.post(f"/api/threads/{tid}/posts", json={"body": "why?", "parent_id": r1["id"]})
    root, _ = fetch(f"{server.url}/feeds/t/{tid}.atom")
    assert titles(root) == ["Comment on Tea", "Response to Tea", "Response to Tea", "Tea"]
    assert bob.delete(f"/api/posts/{r2['id']}").status_code == 204
    root, _ = fetch(f"{server.url}/feeds/t/{tid}.atom")
    assert [e.findtext(f"{A}content") for e in root.findall(f"{A}entry")][1] == "<p>green</p>\n"


def test_user_feed(server, forum):
    """/feeds/u/NAME.atom lists the user's posts newest first with their threads' titles."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"], title="Mine")["thread"]["id"]
    alice.post(f"/api/threads/{tid}/posts", json={"body": "self-answer"})
    root, _ = fetch(f"{server.url}/feeds/u/{alice.user['username']}.atom")
    assert titles(root) == ["Response to Mine", "Mine"]


def test_etag_and_304(server, forum):
    """The same feed answers the same ETag; sending it back is 304 with no body, until the feed changes."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    url = f"{server.url}/feeds/t/{tid}.atom"
    _, tag = fetch(url)
    r = http.get(url, headers={"if-none-match": tag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag
    alice.post(f"/api/threads/{tid}/posts", json={"body": "news"})
    r = http.get(url, headers={"if-none-match": tag})
    assert r.status_code == 200 and r.headers["etag"] != tag


def test_deleted_thread_feed_is_404(server, forum):
    """A deleted thread's feed is 404 (JSON error), and so is an unknown thread, user or category."""
    alice = Api(server.url).sign_up()
    t = new_thread(alice, forum["category"])
    assert http.get(f"{server.url}/feeds/t/{t['thread']['id']}.atom").status_code == 200
    assert forum["mod"].delete(f"/api/posts/{t['question']['id']}").status_code == 204
    for path in (f"/feeds/t/{t['thread']['id']}.atom", "/feeds/t/99999999.atom", "/feeds/t/x.atom",
                 "/feeds/u/nobody-here-at-all.atom", "/feeds/c/no-such-category.atom"):
        r = http.get(f"{server.url}{path}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path


@pytest.mark.asyncio
async def test_long_thread_feed_has_the_newest_50(server, forum, pg_url):
    """A thread of 10,000 responses: its feed holds the newest 50, newest first."""
    alice = Api(server.url).sign_up()
    t = new_thread(alice, forum["category"], title="Busy")
    tid, qid = t["thread"]["id"], t["question"]["id"]
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            """INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html)
               SELECT $1, $2, 'response', $3, 'r' || n, '<p>r' || n || '</p>' FROM generate_series(1, 10000) n""",
            tid, qid, alice.user["id"])
        # Kept as the server keeps it: another test in this database may delete one of these responses (the
        # schemathesis run did, and a count of 0 going below zero looked like a server bug).
        await conn.execute("UPDATE threads SET response_count = response_count + 10000 WHERE id = $1", tid)
    finally:
        await conn.close()
    r = http.get(f"{server.url}/feeds/t/{tid}.atom")
    root = valid_atom(r.content)
    contents = [e.findtext(f"{A}content") for e in root.findall(f"{A}entry")]
    assert contents == [f"<p>r{n}</p>" for n in range(10000, 9950, -1)]


def test_tag_feed_lists_newest_threads_with_the_tag(server, forum):
    """/feeds/tag/NAME.atom lists the threads carrying the tag, newest first (any case); an unknown tag is 404."""
    import secrets
    alice = Api(server.url).sign_up()
    name = f"feed{secrets.token_hex(3)}"
    for title, tags in (("Tagged one", [name]), ("Untagged", []), ("Tagged two", [name.upper(), "other"])):
        r = alice.post("/api/threads", json={"category": forum["category"], "title": title, "body": "b", "tags": tags})
        assert r.status_code == 201, r.text
    root, _ = fetch(f"{server.url}/feeds/tag/{name}.atom")
    assert titles(root) == ["Tagged two", "Tagged one"]
    assert http.get(f"{server.url}/feeds/tag/{name.upper()}.atom").status_code == 200
    assert http.get(f"{server.url}/feeds/tag/no-such-tag-here.atom").status_code == 404
