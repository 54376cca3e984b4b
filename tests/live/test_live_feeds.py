"""Live thread lists over /ws: the `feed` subscription (created, activity, deleted, category descendants,
coalescing, unsubscribe, bad feeds)."""

from __future__ import annotations

import asyncio

from support.api import Api, new_thread, unique


def _feed(feed: str, thread_id: int, pred=lambda t: True):
    return lambda f: (f["type"] == "feed" and f["feed"] == feed and f["thread"]["id"] == thread_id
                      and pred(f["thread"]))


async def _category(mod: Api, parent: str | None = None) -> str:
    slug = unique("f")
    body = {"slug": slug, "name": "Feed " + slug, **({"parent": parent} if parent else {})}
    r = await asyncio.to_thread(mod.post, "/api/categories", json=body)
    assert r.status_code == 201, r.text
    return slug


async def test_feed_all_hears_a_new_thread_activity_and_deletion(server, forum, watchers):
    """feed:all answers subscribed, then a feed frame with the new Thread, one with the new response
    count after a reply, and one with deleted: true when a moderator deletes the thread."""
    author, other = Api(server.url).sign_up(), Api(server.url).sign_up()
    w = await watchers(server.ws_url)
    await w.send({"type": "subscribe", "feed": "all"})
    assert await w.wait_for(lambda f: f["type"] == "subscribed") == {"type": "subscribed", "feed": "all"}
    created = await asyncio.to_thread(new_thread, author, forum["category"], "Fresh off the press")
    tid = created["thread"]["id"]
    f = await w.wait_for(_feed("all", tid))
    assert f["thread"]["title"] == "Fresh off the press" and f["thread"]["response_count"] == 0
    assert f["thread"]["following"] is False and f["thread"]["unread"] is None
    assert "deleted" not in f["thread"]
    r = await asyncio.to_thread(other.post, f"/api/threads/{tid}/posts", json={"body": "first!"})
    assert r.status_code == 201
    await w.wait_for(_feed("all", tid, lambda t: t["response_count"] == 1), timeout=5)
    r = await asyncio.to_thread(forum["mod"].delete, f"/api/posts/{created['question']['id']}")
    assert r.status_code == 204
    await w.wait_for(_feed("all", tid, lambda t: t.get("deleted") is True), timeout=5)


async def test_a_category_feed_includes_descendants_and_not_other_categories(server, forum, watchers):
    """A parent's feed hears a thread made in its child; a sibling's feed does not."""
    mod = forum["mod"]
    parent = await _category(mod)
    child = await _category(mod, parent)
    sibling = await _category(mod)
    w = await watchers(server.ws_url)
    for feed in (f"category:{parent}", f"category:{sibling}"):
        await w.send({"type": "subscribe", "feed": feed})
        await w.wait_for(lambda f, feed=feed: f == {"type": "subscribed", "feed": feed})
    author = Api(server.url).sign_up()
    tid = (await asyncio.to_thread(new_thread, author, child))["thread"]["id"]
    f = await w.wait_for(_feed(f"category:{parent}", tid))
    assert f["thread"]["category"]["slug"] == child
    await asyncio.sleep(0.5)
    assert not [x for x in w.frames if x["type"] == "feed" and x["feed"] == f"category:{sibling}"]


async def test_a_burst_of_replies_is_coalesced_to_about_one_frame_a_second(server, forum, watchers):
    """Twelve quick replies to one thread give the feed far fewer frames than replies, the last one
    carrying the final count."""
    author, other = Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = (await asyncio.to_thread(new_thread, author, forum["category"]))["thread"]["id"]
    w = await watchers(server.ws_url)
    await w.send({"type": "subscribe", "feed": "all"})
    await w.wait_for(lambda f: f["type"] == "subscribed")
    start = asyncio.get_running_loop().time()
    for i in range(12):
        r = await asyncio.to_thread(other.post, f"/api/threads/{tid}/posts", json={"body": f"reply {i}"})
        assert r.status_code == 201
    await w.wait_for(_feed("all", tid, lambda t: t["response_count"] == 12), timeout=5)
    elapsed = asyncio.get_running_loop().time() - start
    got = [f for f in w.frames if f["type"] == "feed" and f["thread"]["id"] == tid]
    assert len(got) <= int(elapsed) + 2, (len(got), elapsed)


async def test_unsubscribe_stops_a_feed_and_bad_feeds_are_refused(server, forum, watchers):
    """After unsubscribing nothing more arrives; an unknown category and a malformed feed get error frames."""
    w = await watchers(server.ws_url)
    await w.send({"type": "subscribe", "feed": "all"})
    await w.wait_for(lambda f: f["type"] == "subscribed")
    await w.send({"type": "unsubscribe", "feed": "all"})
    assert await w.wait_for(lambda f: f["type"] == "unsubscribed") == {"type": "unsubscribed", "feed": "all"}
    author = Api(server.url).sign_up()
    tid = (await asyncio.to_thread(new_thread, author, forum["category"]))["thread"]["id"]
    await w.send({"type": "subscribe", "feed": f"category:{unique('none')}"})
    err = await w.wait_for(lambda f: f["type"] == "error")
    assert err["code"] == "not_found"
    mark = len(w.frames)
    await w.send({"type": "subscribe", "feed": "everything"})
    assert (await w.wait_for(lambda f: f["type"] == "error", start=mark))["code"] == "invalid"
    mark = len(w.frames)
    await w.send({"type": "subscribe", "feed": "all", "thread": tid})
    assert (await w.wait_for(lambda f: f["type"] == "error", start=mark))["code"] == "invalid"
    await asyncio.sleep(0.5)
    assert not [f for f in w.frames if f["type"] == "feed"]
    assert w.closed is None


async def test_a_feed_update_reaches_a_socket_on_another_process(spawn, watchers):
    """A thread created on process A appears in feed:all on process B."""
    a, b = spawn(), spawn()
    w = await watchers(b.ws_url)
    await w.send({"type": "subscribe", "feed": "all"})
    await w.wait_for(lambda f: f["type"] == "subscribed")
    mod = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    from support.databases import make_moderator
    make_moderator(a.env["DATABASE_URL"], mod.user["username"])
    slug = await _category(mod)
    tid = (await asyncio.to_thread(new_thread, mod, slug))["thread"]["id"]
    await w.wait_for(_feed("all", tid))


async def test_a_moved_thread_leaves_its_old_category_feed_and_joins_the_new(server, forum, watchers):
    """Moving a thread: the old category's feed hears it as deleted, the new one's hears it, feed:all too."""
    mod = forum["mod"]
    old, new = await _category(mod), await _category(mod)
    tid = (await asyncio.to_thread(new_thread, mod, old))["thread"]["id"]
    w = await watchers(server.ws_url)
    for feed in (f"category:{old}", f"category:{new}", "all"):
        await w.send({"type": "subscribe", "feed": feed})
        await w.wait_for(lambda f, feed=feed: f == {"type": "subscribed", "feed": feed})
    r = await asyncio.to_thread(mod.patch, f"/api/threads/{tid}", json={"category": new})
    assert r.status_code == 200, r.text
    await w.wait_for(_feed(f"category:{old}", tid, lambda t: t.get("deleted") is True))
    await w.wait_for(_feed(f"category:{new}", tid, lambda t: t["category"]["slug"] == new and "deleted" not in t))
    await w.wait_for(_feed("all", tid, lambda t: "deleted" not in t))
