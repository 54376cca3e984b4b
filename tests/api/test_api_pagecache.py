"""Guests' thread pages are kept per process (server/api/pagecache.py): never stale, revalidated by ETag."""

from __future__ import annotations

from typing import Any

import httpx

from support.api import Api, new_thread


def guest_page(url: str, tid: int, **params: Any) -> httpx.Response:
    r = httpx.get(f"{url}/api/threads/{tid}", params=params)
    assert r.status_code == 200, r.text
    return r


def test_a_guest_sees_every_change_at_once(forum: dict[str, Any]) -> None:
    """A reply, an edit, a vote and a deletion each show in the very next guest fetch of the page."""
    url = forum["url"]
    author = Api(url).sign_up()
    tid = new_thread(author, forum["category"])["thread"]["id"]
    assert guest_page(url, tid).json()["responses"] == []
    guest_page(url, tid)  # now kept
    post = author.post(f"/api/threads/{tid}/posts", json={"body": "First answer"}).json()["post"]
    assert [p["body"] for p in guest_page(url, tid).json()["responses"]] == ["First answer"]
    assert author.patch(f"/api/posts/{post['id']}", json={"body": "Edited answer"}).status_code == 200
    assert guest_page(url, tid).json()["responses"][0]["body"] == "Edited answer"
    voter = Api(url).sign_up()
    assert voter.put(f"/api/posts/{post['id']}/vote", json={"value": 1}).status_code == 200
    assert guest_page(url, tid).json()["responses"][0]["score"] == 1
    assert author.delete(f"/api/posts/{post['id']}").status_code in (200, 204)
    assert guest_page(url, tid).json()["responses"][0]["deleted"] is True


def test_pages_differ_by_sort_limit_and_cursor(forum: dict[str, Any]) -> None:
    """Each sort, limit and cursor is its own page: no fetch answers with another's kept page."""
    url = forum["url"]
    author = Api(url).sign_up()
    tid = new_thread(author, forum["category"])["thread"]["id"]
    for text in ("one", "two", "three"):
        assert author.post(f"/api/threads/{tid}/posts", json={"body": text}).status_code == 201
    oldest = [p["body"] for p in guest_page(url, tid).json()["responses"]]
    newest = [p["body"] for p in guest_page(url, tid, sort="newest").json()["responses"]]
    assert oldest == ["one", "two", "three"] and newest == ["three", "two", "one"]
    first = guest_page(url, tid, limit=1).json()
    assert [p["body"] for p in first["responses"]] == ["one"]
    second = guest_page(url, tid, limit=1, after=first["next"]).json()
    assert [p["body"] for p in second["responses"]] == ["two"]


def test_etag_gives_304_until_the_thread_changes(forum: dict[str, Any]) -> None:
    """A guest revalidating with the page's ETag gets 304 with no body, and 200 with a new ETag after a reply."""
    url = forum["url"]
    author = Api(url).sign_up()
    tid = new_thread(author, forum["category"])["thread"]["id"]
    first = guest_page(url, tid)
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache" and "cookie" in first.headers["vary"].lower()
    again = httpx.get(f"{url}/api/threads/{tid}", headers={"if-none-match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert author.post(f"/api/threads/{tid}/posts", json={"body": "news"}).status_code == 201
    changed = httpx.get(f"{url}/api/threads/{tid}", headers={"if-none-match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    assert [p["body"] for p in changed.json()["responses"]] == ["news"]


def test_signed_in_readers_get_their_own_page(forum: dict[str, Any]) -> None:
    """A signed-in reader's page is never a kept guest page: it shows their follow, and carries no ETag."""
    url = forum["url"]
    author = Api(url).sign_up()
    tid = new_thread(author, forum["category"])["thread"]["id"]
    guest = guest_page(url, tid).json()
    assert guest["thread"]["following"] is False
    reader = Api(url).sign_up()
    assert reader.put(f"/api/threads/{tid}/following", json={"following": True}).status_code == 200
    mine = reader.get(f"/api/threads/{tid}")
    assert mine.json()["thread"]["following"] is True and "etag" not in mine.headers
    assert author.get(f"/api/threads/{tid}").json()["thread"]["following"] is True  # the author follows


def test_a_deleted_thread_is_gone_for_guests_at_once(forum: dict[str, Any]) -> None:
    """Deleting a thread makes the next guest fetch 404, though its page was kept a moment before."""
    url = forum["url"]
    mod = forum["mod"]
    thread = new_thread(mod, forum["category"])
    tid = thread["thread"]["id"]
    guest_page(url, tid)
    guest_page(url, tid)
    assert mod.delete(f"/api/posts/{thread['question']['id']}").status_code in (200, 204)
    assert httpx.get(f"{url}/api/threads/{tid}").status_code == 404


def test_a_guest_on_another_process_sees_a_reply_at_once(spawn: Any, forum: dict[str, Any]) -> None:
    """Two processes: a page kept by the second one is not answered after a reply made through the first."""
    other = spawn()
    author = Api(forum["url"]).sign_up()
    tid = new_thread(author, forum["category"])["thread"]["id"]
    guest_page(other.url, tid)
    guest_page(other.url, tid)
    assert author.post(f"/api/threads/{tid}/posts", json={"body": "across"}).status_code == 201
    assert [p["body"] for p in guest_page(other.url, tid).json()["responses"]] == ["across"]
