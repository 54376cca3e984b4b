"""Two watchers on one thread see every kind of change, in order, with the HTTP bodies."""

from __future__ import annotations

import asyncio

import httpx

from support.api import Api, new_thread


def _without_my_vote(post):
    return {k: v for k, v in post.items() if k not in ("my_vote", "comments")}


async def test_two_watchers_get_every_event_kind_in_order(server, forum, watchers):
    """post.created, post.edited, vote.changed, post.deleted and thread.updated reach both watchers
    with consecutive seq and the same Post the HTTP answer carried."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    created = new_thread(alice, forum["category"])
    tid = created["thread"]["id"]
    w1, w2 = await watchers(server.ws_url), await watchers(server.ws_url, bob.session_cookie)
    for w in (w1, w2):
        sub = await w.subscribe(tid)
        assert sub == {"type": "subscribed", "thread": tid, "seq": 1}

    answers = []
    r = await asyncio.to_thread(bob.post, f"/api/threads/{tid}/posts", json={"body": "first *reply*"})
    assert r.status_code == 201
    post = r.json()["post"]
    answers.append(("post.created", post))
    r = await asyncio.to_thread(bob.patch, f"/api/posts/{post['id']}", json={"body": "edited reply", "revision": 1})
    assert r.status_code == 200
    answers.append(("post.edited", r.json()["post"]))
    r = await asyncio.to_thread(alice.put, f"/api/posts/{post['id']}/vote", json={"value": 1})
    assert r.json() == {"post_id": post["id"], "score": 1, "my_vote": 1}
    answers.append(("vote.changed", {"post_id": post["id"], "score": 1}))
    r = await asyncio.to_thread(alice.patch, f"/api/threads/{tid}", json={"title": "A better title"})
    assert r.status_code == 200
    answers.append(("thread.updated", r.json()["thread"]))
    r = await asyncio.to_thread(bob.delete, f"/api/posts/{post['id']}")
    assert r.status_code == 204
    answers.append(("post.deleted", {"id": post["id"]}))

    for w in (w1, w2):
        events = await w.wait_seq(tid, 6)
        assert [e["seq"] for e in events] == [2, 3, 4, 5, 6]
        for event, (name, data) in zip(events, answers, strict=True):
            assert event["name"] == name
            if name.startswith("post.") and name != "post.deleted":
                assert event["data"]["my_vote"] == 0
                assert _without_my_vote(event["data"]) == _without_my_vote(data)
            else:
                assert event["data"] == data
    # The thread's own seq moved with its events.
    assert httpx.get(f"{server.url}/api/threads/{tid}").json()["thread"]["seq"] == 6


async def test_unsubscribe_stops_events(server, forum, watchers):
    """After unsubscribe the watcher gets `unsubscribed` and no further events of that thread."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    w = await watchers(server.ws_url)
    await w.subscribe(tid)
    await w.send({"type": "unsubscribe", "thread": tid})
    assert await w.wait_for(lambda f: f["type"] == "unsubscribed") == {"type": "unsubscribed", "thread": tid}
    await asyncio.to_thread(alice.post, f"/api/threads/{tid}/posts", json={"body": "nobody hears this"})
    await w.send({"type": "ping", "id": "after"})
    await w.wait_for(lambda f: f["type"] == "pong" and f["id"] == "after")
    await asyncio.sleep(0.3)
    assert w.seqs(tid) == []


async def test_metrics_show_the_live_series(server, forum, watchers):
    """After live traffic /metrics carries sockets, subscriptions, published/delivered events, fan-out
    latency, slow-consumer closes, broker reconnects, gap backfills, presence and HTTP series."""
    alice = Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    w = await watchers(server.ws_url)
    await w.subscribe(tid)
    await asyncio.to_thread(alice.post, f"/api/threads/{tid}/posts", json={"body": "counted"})
    await w.wait_seq(tid, 2)
    text = (await asyncio.to_thread(httpx.get, server.url + "/metrics")).text
    for series in ("parley_ws_open_sockets", "parley_ws_subscriptions", "parley_events_published_total",
                   "parley_events_delivered_total", "parley_fanout_latency_seconds_bucket",
                   "parley_ws_slow_consumer_closes_total", "parley_broker_reconnects_total",
                   "parley_gap_backfills_total", "parley_presence_users", "parley_presence_guests",
                   'parley_http_requests_total{method="POST",route="/api/threads/{id}/posts",status="201"}',
                   "parley_http_request_duration_seconds_bucket"):
        assert series in text, series
    published = next(x for x in text.splitlines() if x.startswith("parley_events_published_total"))
    assert float(published.split()[-1]) >= 1
