"""Guests' thread pages are kept per process (server/pagecache.py): never stale, revalidated by ETag."""

from __future__ import annotations

from typing import Any

import httpx

from support.api import Api, new_thread
from support.databases import run_sync


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


def whole_page(pg_url: str, tid: int, user_id: int, sort: str = "oldest") -> dict[str, Any]:
    """The reader's page read whole in one snapshot (store.threads.page), JSON-shaped like the API's."""
    import asyncpg
    import msgspec

    from server.store import threads

    async def run() -> dict[str, Any]:
        pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=1)
        try:
            return msgspec.json.decode(msgspec.json.encode(await threads.page(pool, tid, user_id, 50, None, sort)))
        finally:
            await pool.close()
    return run_sync(run)


def test_readers_share_a_kept_page_but_each_sees_only_their_own_part(forum: dict[str, Any], pg_url: str) -> None:
    """Two readers of one kept page: each answer equals that reader's page read whole (votes on the question,
    a response and a comment, following, unread), and neither sees the other's votes."""
    url = forum["url"]
    author = Api(url).sign_up()
    thread = new_thread(author, forum["category"])
    tid, qid = thread["thread"]["id"], thread["question"]["id"]
    a = author.post(f"/api/threads/{tid}/posts", json={"body": "Answer A"}).json()["post"]
    b = author.post(f"/api/threads/{tid}/posts", json={"body": "Answer B"}).json()["post"]
    c = author.post(f"/api/threads/{tid}/posts", json={"body": "A comment", "parent_id": a["id"]}).json()["post"]
    one, two = Api(url).sign_up(), Api(url).sign_up()
    for voter, votes in ((one, {qid: 1, a["id"]: 1, c["id"]: -1}), (two, {b["id"]: -1})):
        for pid, value in votes.items():
            assert voter.put(f"/api/posts/{pid}/vote", json={"value": value}).status_code == 200
    assert one.put(f"/api/threads/{tid}/following", json={"following": True}).status_code == 200
    assert two.put(f"/api/threads/{tid}/read", json={"seq": 2}).status_code in (200, 204)
    guest_page(url, tid)  # kept now, at the current seq
    for reader in (one, two, one):
        got = reader.get(f"/api/threads/{tid}")
        assert got.status_code == 200 and "etag" not in got.headers
        assert got.json() == whole_page(pg_url, tid, reader.user["id"])
    mine = one.get(f"/api/threads/{tid}").json()
    assert mine["question"]["my_vote"] == 1 and mine["responses"][0]["my_vote"] == 1
    assert mine["responses"][0]["comments"][0]["my_vote"] == -1 and mine["responses"][1]["my_vote"] == 0
    theirs = two.get(f"/api/threads/{tid}").json()
    assert theirs["question"]["my_vote"] == 0 and theirs["responses"][1]["my_vote"] == -1
    assert theirs["thread"]["unread"] == 2 and theirs["thread"]["following"] is False
    assert guest_page(url, tid).json()["question"]["my_vote"] == 0  # the kept page itself is untouched


def test_a_readers_own_changes_show_in_their_next_fetch(forum: dict[str, Any], pg_url: str) -> None:
    """A vote (moves the seq), an unfollow and a read position (do not) each show in the reader's very next
    fetch though the page was kept a moment before; so does a reply by someone else."""
    url = forum["url"]
    author = Api(url).sign_up()
    tid = new_thread(author, forum["category"])["thread"]["id"]
    post = author.post(f"/api/threads/{tid}/posts", json={"body": "An answer"}).json()["post"]
    reader = Api(url).sign_up()
    assert reader.post(f"/api/threads/{tid}/posts", json={"body": "Mine"}).status_code == 201  # follows now
    reader.get(f"/api/threads/{tid}")
    assert reader.get(f"/api/threads/{tid}").json()["thread"]["following"] is True
    assert reader.put(f"/api/posts/{post['id']}/vote", json={"value": 1}).status_code == 200
    assert reader.get(f"/api/threads/{tid}").json()["responses"][0]["my_vote"] == 1
    assert reader.put(f"/api/threads/{tid}/following", json={"following": False}).status_code == 200
    assert reader.get(f"/api/threads/{tid}").json()["thread"]["following"] is False
    assert author.post(f"/api/threads/{tid}/posts", json={"body": "Another"}).status_code == 201
    page = reader.get(f"/api/threads/{tid}").json()
    assert [p["body"] for p in page["responses"]] == ["An answer", "Mine", "Another"]
    assert page["thread"]["unread"] == 1
    assert reader.put(f"/api/threads/{tid}/read", json={"seq": page["thread"]["seq"]}).status_code in (200, 204)
    assert reader.get(f"/api/threads/{tid}").json()["thread"]["unread"] == 0
    assert reader.get(f"/api/threads/{tid}").json() == whole_page(pg_url, tid, reader.user["id"])


def test_a_reader_on_another_process_sees_a_reply_and_a_deletion_at_once(spawn: Any, forum: dict[str, Any]) -> None:
    """Two processes: a reader's page on the second is never the kept one after a reply through the first,
    and a deleted thread is 404 for them at once."""
    other = spawn()
    mod = forum["mod"]
    thread = new_thread(mod, forum["category"])
    tid = thread["thread"]["id"]
    reader = Api(other.url).sign_up()
    reader.get(f"/api/threads/{tid}")
    reader.get(f"/api/threads/{tid}")
    assert mod.post(f"/api/threads/{tid}/posts", json={"body": "across"}).status_code == 201
    assert [p["body"] for p in reader.get(f"/api/threads/{tid}").json()["responses"]] == ["across"]
    assert mod.delete(f"/api/posts/{thread['question']['id']}").status_code in (200, 204)
    assert reader.get(f"/api/threads/{tid}").status_code == 404
