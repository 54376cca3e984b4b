"""What is deleted stays deleted (issue 13, findings 2, 3 and 10): a deleted post's text leaves the stored
events and every replay, a deleted thread refuses subscribers on every process, and an Idempotency-Key
belongs to one user and one thread and never replays a deleted post or a gone thread."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from apply_js import NodeApplier, running
from support.api import Api, new_thread, unique
from support.databases import make_moderator


@pytest.fixture(scope="module")
def site(server: Any, pg_url: str) -> dict[str, Any]:
    mod = Api(server.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = unique("cat-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Deleted"}).status_code == 201
    return {"mod": mod, "category": slug}


@pytest.fixture(scope="module")
def applier() -> Iterator[NodeApplier]:
    """web/js/apply.js in Node (tests/live/apply_js.py)."""
    yield from running()


def fresh(url: str, tid: int) -> dict[str, Any]:
    return httpx.get(f"{url}/api/threads/{tid}").json()  # type: ignore[no-any-return]


async def test_deleted_post_text_leaves_events_and_every_replay(server: Any, site: dict[str, Any],
                                                               spawn: Any, watchers: Any,
                                                               applier: NodeApplier) -> None:
    """After post, edit, delete: neither text is in GET events?since=0, nor in a /ws replay from the room's
    cache or from another process; and snapshot + events still equals a fresh fetch."""
    author = Api(server.url).sign_up()
    tid = new_thread(author, site["category"])["thread"]["id"]
    start = fresh(server.url, tid)
    early = await watchers(server.ws_url)
    await early.subscribe(tid)  # the room now caches the frames that carry the text
    first, second = unique("original-"), unique("edited-")
    post = (await asyncio.to_thread(author.post, f"/api/threads/{tid}/posts", json={"body": first})).json()["post"]
    assert (await asyncio.to_thread(author.patch, f"/api/posts/{post['id']}", json={"body": second})).status_code \
        == 200
    assert (await asyncio.to_thread(author.delete, f"/api/posts/{post['id']}")).status_code == 204
    await early.wait_seq(tid, 4)
    raw = httpx.get(f"{server.url}/api/threads/{tid}/events", params={"since": 0}).text
    assert first not in raw and second not in raw
    other = spawn()
    for url in (server.ws_url, other.ws_url):
        w = await watchers(url)
        begin = len(w.frames)
        ack = await w.subscribe(tid, since=0)
        assert ack["type"] == "subscribed" and ack["seq"] == 4, ack
        text = json.dumps(w.frames[begin:])
        assert first not in text and second not in text
        state = copy.deepcopy(start)
        state["thread"]["seq"] = 0
        state["responses"] = []
        state = applier.apply(state, w.events[tid])
        now = fresh(server.url, tid)
        assert state["responses"] == now["responses"] and state["thread"] == now["thread"]


async def test_deleted_thread_refuses_subscribers_while_watched(server: Any, site: dict[str, Any], spawn: Any,
                                                               watchers: Any) -> None:
    """While sockets still watch a thread on two processes, deleting it makes every new subscribe there, with
    or without since, an error frame with code not_found and no events."""
    mod = site["mod"]
    other = spawn()
    tid = new_thread(mod, site["category"], body=unique("secret question "))["thread"]["id"]
    await asyncio.to_thread(mod.post, f"/api/threads/{tid}/posts", json={"body": "a reply"})
    keep = [await watchers(server.ws_url), await watchers(other.ws_url)]
    for w in keep:
        assert (await w.subscribe(tid, since=0))["type"] == "subscribed"
    question = fresh(server.url, tid)["question"]["id"]
    assert (await asyncio.to_thread(mod.delete, f"/api/posts/{question}")).status_code == 204
    assert httpx.get(f"{server.url}/api/threads/{tid}").status_code == 404
    for url in (server.ws_url, other.ws_url):
        for since in (0, None):
            w = await watchers(url)
            reply = await w.subscribe(tid, since=since)
            assert reply["type"] == "error" and reply["code"] == "not_found", reply
            assert tid not in w.events


def test_idempotency_key_belongs_to_one_thread(server: Any, site: dict[str, Any]) -> None:
    """The same key on another thread makes a new post there; on a missing thread it is 404, on a deleted
    one 409; the replay on the first thread still returns its own post."""
    user, mod = Api(server.url).sign_up(), site["mod"]
    t1 = new_thread(user, site["category"])["thread"]["id"]
    t2 = new_thread(user, site["category"])["thread"]["id"]
    gone = new_thread(user, site["category"])
    key = {"Idempotency-Key": unique("key-")}
    p1 = user.post(f"/api/threads/{t1}/posts", json={"body": "one"}, headers=key)
    assert p1.status_code == 201
    p2 = user.post(f"/api/threads/{t2}/posts", json={"body": "two"}, headers=key)
    assert p2.status_code == 201 and p2.json()["post"]["thread_id"] == t2, p2.text
    assert p2.json()["post"]["id"] != p1.json()["post"]["id"]
    again = user.post(f"/api/threads/{t1}/posts", json={"body": "one"}, headers=key)
    assert again.status_code == 200 and again.json()["post"]["id"] == p1.json()["post"]["id"]
    assert user.post("/api/threads/999999999/posts", json={"body": "x"}, headers=key).status_code == 404
    assert mod.delete(f"/api/posts/{gone['question']['id']}").status_code == 204
    r = user.post(f"/api/threads/{gone['thread']['id']}/posts", json={"body": "x"}, headers=key)
    assert r.status_code == 409 and "one" not in r.text, r.text


def test_idempotent_replay_never_shows_a_deleted_post_or_gone_thread(server: Any, site: dict[str, Any]) -> None:
    """A replayed key whose post was deleted is a 409 without the text; once the thread is gone, a 409 too."""
    user, mod = Api(server.url).sign_up(), site["mod"]
    thread = new_thread(user, site["category"])
    tid = thread["thread"]["id"]
    secret = unique("secret-")
    key = {"Idempotency-Key": unique("key-")}
    post = user.post(f"/api/threads/{tid}/posts", json={"body": secret}, headers=key).json()["post"]
    assert user.delete(f"/api/posts/{post['id']}").status_code == 204
    r = user.post(f"/api/threads/{tid}/posts", json={"body": secret}, headers=key)
    assert r.status_code == 409 and secret not in r.text and r.json()["error"]["code"] == "post_deleted", r.text
    key2 = {"Idempotency-Key": unique("key-")}
    kept = user.post(f"/api/threads/{tid}/posts", json={"body": secret + "2"}, headers=key2)
    assert kept.status_code == 201
    assert mod.delete(f"/api/posts/{thread['question']['id']}").status_code == 204
    r = user.post(f"/api/threads/{tid}/posts", json={"body": secret + "2"}, headers=key2)
    assert r.status_code == 409 and secret not in r.text and r.json()["error"]["code"] == "thread_deleted", r.text
