"""Tags and duplicates live: a followed tag's new question reaches the follower's sockets as a `tagged`
notification, a feed's thread carries its tags, and marking a duplicate is a thread.updated event to watchers."""

from __future__ import annotations

import asyncio

from support.api import Api, new_thread, unique
from support.databases import make_moderator


async def on_channel(w):
    await w.send({"type": "ping", "id": "ready"})
    await w.wait_for(lambda f: f["type"] == "pong" and f["id"] == "ready")
    return w


async def test_tagged_notification_feed_tags_and_duplicate_event_live(server, watchers):
    """A follower's socket gets {"type":"notification"} of kind tagged; the feed:all frame's Thread has the tags;
    a subscriber of the duplicate gets thread.updated with duplicate_of."""
    ada = await asyncio.to_thread(lambda: Api(server.url).sign_up())
    fan = await asyncio.to_thread(lambda: Api(server.url).sign_up())
    mod = await asyncio.to_thread(lambda: Api(server.url).sign_up())
    make_moderator(server.env["DATABASE_URL"], mod.user["username"])
    slug, tag = unique("c"), unique("lt-")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    seed = await asyncio.to_thread(ada.post, "/api/threads", json={"category": slug, "title": "Seed", "body": "b",
                                                                  "tags": [tag]})
    assert seed.status_code == 201, seed.text
    assert (await asyncio.to_thread(fan.put, f"/api/tags/{tag}/following", json={"following": True})).status_code == 200
    tab = await on_channel(await watchers(server.ws_url, fan.session_cookie))
    feed = await watchers(server.ws_url)
    await feed.send({"type": "subscribe", "feed": "all"})
    await feed.wait_for(lambda f: f["type"] == "subscribed" and f.get("feed") == "all")
    r = await asyncio.to_thread(ada.post, "/api/threads", json={"category": slug, "title": "Tagged live",
                                                               "body": "b", "tags": [tag, "live"]})
    assert r.status_code == 201, r.text
    made = r.json()
    frame = await tab.wait_for(lambda f: f["type"] == "notification"
                               and f["notification"]["post_id"] == made["question"]["id"], timeout=30)
    assert frame["notification"]["kind"] == "tagged" and frame["unread"] >= 1
    listed = await feed.wait_for(lambda f: f["type"] == "feed" and f["thread"]["id"] == made["thread"]["id"],
                                 timeout=30)
    assert listed["thread"]["tags"] == [tag, "live"]
    original = (await asyncio.to_thread(new_thread, ada, slug, "The original"))["thread"]["id"]
    watcher = await watchers(server.ws_url)
    await watcher.subscribe(made["thread"]["id"])
    r = await asyncio.to_thread(mod.put, f"/api/threads/{made['thread']['id']}/duplicate", json={"of": original})
    assert r.status_code == 200, r.text
    event = await watcher.wait_for(lambda f: f["type"] == "event" and f["name"] == "thread.updated", timeout=30)
    assert event["data"]["duplicate_of"] == {"id": original, "title": "The original"}
