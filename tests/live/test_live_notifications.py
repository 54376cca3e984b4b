"""Notification frames on the user channel: every socket of the user on every process, with no
subscription; counts that change by reading elsewhere or by a withdrawal reach every tab."""

from __future__ import annotations

import asyncio

from support.api import Api, new_thread, unique


async def on_channel(w):
    """The socket is on its user channel: the server answers frames only after subscribing it (ws._serve)."""
    await w.send({"type": "ping", "id": "ready"})
    await w.wait_for(lambda f: f["type"] == "pong" and f["id"] == "ready")
    return w


def _notification(post_id: int):
    return lambda f: f["type"] == "notification" and f["notification"]["post_id"] == post_id


async def test_a_response_reaches_every_socket_of_the_asker_on_two_processes(spawn, watchers):
    """Bob answers Ada's question on process A; Ada's sockets on A and B each get the notification frame
    with her unread count, and nobody else's socket does."""
    a, b = spawn(), spawn()
    ada = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    bob = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    mod = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    from support.databases import make_moderator
    make_moderator(a.env["DATABASE_URL"], mod.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    tid = (await asyncio.to_thread(new_thread, ada, slug))["thread"]["id"]
    tabs = [await on_channel(await watchers(url, ada.session_cookie)) for url in (a.ws_url, b.ws_url, b.ws_url)]
    other = await on_channel(await watchers(b.ws_url, bob.session_cookie))
    r = await asyncio.to_thread(bob.post, f"/api/threads/{tid}/posts", json={"body": "An answer"})
    assert r.status_code == 201, r.text
    post_id = r.json()["post"]["id"]
    # The contract's second is measured in bench.notify (delivery p99), not timed here on a shared machine.
    frames = [await t.wait_for(_notification(post_id), timeout=5) for t in tabs]
    for f in frames:
        assert set(f) == {"type", "notification", "unread"}
        n = f["notification"]
        assert n["kind"] == "response" and n["actor"]["id"] == bob.user["id"] and n["read"] is False
        assert n["thread"]["id"] == tid and f["unread"] == 1
    await asyncio.sleep(0.3)
    assert not [f for f in other.frames if f["type"] in ("notification", "notifications")]


async def test_reading_in_one_tab_and_a_deletion_update_every_tab(spawn, watchers):
    """Marking all read on process A sends {"type":"notifications","unread":0} to the tab on B; a deleted
    post's withdrawn notification drops the count live too."""
    a, b = spawn(), spawn()
    ada = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    bob = await asyncio.to_thread(lambda: Api(b.url).sign_up())
    mod = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    from support.databases import make_moderator
    make_moderator(a.env["DATABASE_URL"], mod.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    tid = (await asyncio.to_thread(new_thread, ada, slug))["thread"]["id"]
    tab_a = await on_channel(await watchers(a.ws_url, ada.session_cookie))
    tab_b = await on_channel(await watchers(b.ws_url, ada.session_cookie))
    first = await asyncio.to_thread(bob.post, f"/api/threads/{tid}/posts", json={"body": "one"})
    second = await asyncio.to_thread(bob.post, f"/api/threads/{tid}/posts",
                                     json={"body": f"two, @{ada.user['username']}"})
    got = await tab_b.wait_for(_notification(second.json()["post"]["id"]))
    assert got["unread"] == 2 and got["notification"]["kind"] == "mention"
    await tab_a.wait_for(_notification(second.json()["post"]["id"]))
    marks = len(tab_a.frames), len(tab_b.frames)
    r = await asyncio.to_thread(bob.delete, f"/api/posts/{first.json()['post']['id']}")
    assert r.status_code == 204
    for tab, mark in zip((tab_a, tab_b), marks, strict=True):  # both tabs hear it before the marks below
        assert (await tab.wait_for(lambda f: f["type"] == "notifications", start=mark))["unread"] == 1
    mark_a, mark_b = len(tab_a.frames), len(tab_b.frames)
    r = await asyncio.to_thread(ada.post, "/api/notifications/read", json={"all": True})
    assert r.status_code == 200 and r.json() == {"unread": 0}
    for tab, mark in ((tab_a, mark_a), (tab_b, mark_b)):
        assert (await tab.wait_for(lambda f: f["type"] == "notifications", start=mark))["unread"] == 0


async def test_a_large_fan_out_still_reaches_a_follower(server, forum, pg_url, watchers):
    """With 400 followers (one batch on the process-wide channel, userchannel.py), a follower's socket
    gets its `followed` frame, and every follower has the row."""
    from support.databases import db_fetchval
    asker, follower, responder = [await asyncio.to_thread(lambda: Api(server.url).sign_up()) for _ in range(3)]
    tid = (await asyncio.to_thread(new_thread, asker, forum["category"]))["thread"]["id"]
    tag = unique("crowd")
    db_fetchval(pg_url, "WITH u AS (INSERT INTO users (username, display_name, password_hash)"
                        " SELECT $1 || g, 'Crowd', 'x' FROM generate_series(1, 400) g RETURNING id)"
                        " INSERT INTO thread_follows (user_id, thread_id, following) SELECT id, $2, true FROM u",
                tag, tid)
    r = await asyncio.to_thread(follower.put, f"/api/threads/{tid}/following", json={"following": True})
    assert r.status_code == 200
    tab = await on_channel(await watchers(server.ws_url, follower.session_cookie))
    r = await asyncio.to_thread(responder.post, f"/api/threads/{tid}/posts", json={"body": "for the crowd"})
    assert r.status_code == 201, r.text
    post_id = r.json()["post"]["id"]
    got = await tab.wait_for(_notification(post_id), timeout=5)  # the second itself: bench.notify
    assert got["notification"]["kind"] == "followed" and got["unread"] == 1
    assert db_fetchval(pg_url, "SELECT count(*) FROM notifications WHERE post_id = $1", post_id) == 402


async def test_a_large_fan_out_is_one_batch_that_reaches_sockets_on_both_processes(spawn, pg_url, redis_url,
                                                                                    watchers):
    """A reply notifying more users than BROADCAST_MIN is one PUBLISH on the process-wide `users` channel (none
    on user channels); the asker's tabs on A and B and a follower's tab on B get their frames with the right
    unread counts, the replier's socket gets none, and a follower with no socket reads theirs over HTTP."""
    import redis.asyncio as aioredis

    from server.live.userchannel import BROADCAST_MIN
    from support.databases import db_fetchval
    a, b = spawn(), spawn()
    asker, online, offline, responder = [await asyncio.to_thread(lambda: Api(a.url).sign_up()) for _ in range(4)]
    mod = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    from support.databases import make_moderator
    make_moderator(pg_url, mod.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    tid = (await asyncio.to_thread(new_thread, asker, slug))["thread"]["id"]
    crowd = BROADCAST_MIN + 8  # followers made by SQL: they never sign in, so nobody holds their sockets
    db_fetchval(pg_url, "WITH u AS (INSERT INTO users (username, display_name, password_hash)"
                        " SELECT $1 || g, 'Crowd', 'x' FROM generate_series(1, $3::int) g RETURNING id)"
                        " INSERT INTO thread_follows (user_id, thread_id, following) SELECT id, $2, true FROM u",
                unique("crowd"), tid, crowd)
    for u in (online, offline):
        r = await asyncio.to_thread(u.put, f"/api/threads/{tid}/following", json={"following": True})
        assert r.status_code == 200
    asker_tabs = [await on_channel(await watchers(url, asker.session_cookie)) for url in (a.ws_url, b.ws_url)]
    online_tab = await on_channel(await watchers(b.ws_url, online.session_cookie))
    replier_tab = await on_channel(await watchers(a.ws_url, responder.session_cookie))

    namespace = "parley:" + db_fetchval(pg_url, "SELECT value FROM parley_meta WHERE key = 'deployment'")
    spy = aioredis.from_url(redis_url)
    pubsub = spy.pubsub()
    await pubsub.subscribe(f"{namespace}:users")
    await pubsub.psubscribe(f"{namespace}:user:*")
    await pubsub.get_message(timeout=1)
    await pubsub.get_message(timeout=1)
    try:
        post_ids = []
        for body in ("first, for the crowd", "second, for the crowd"):
            r = await asyncio.to_thread(responder.post, f"/api/threads/{tid}/posts", json={"body": body})
            assert r.status_code == 201, r.text
            post_ids.append(r.json()["post"]["id"])
        for tab in asker_tabs:
            got = await tab.wait_for(_notification(post_ids[1]), timeout=5)
            assert got["notification"]["kind"] == "response" and got["unread"] == 2
            assert got["notification"]["actor"]["id"] == responder.user["id"]
            assert got["notification"]["thread"] == {"id": tid, "title": got["notification"]["thread"]["title"]}
        got = await online_tab.wait_for(_notification(post_ids[1]), timeout=5)
        assert got["notification"]["kind"] == "followed" and got["unread"] == 2
        assert set(got) == {"type", "notification", "unread"}
        heard = []
        while (m := await pubsub.get_message(timeout=0.5)) is not None:
            heard.append(m)
    finally:
        await pubsub.aclose()
        await spy.aclose()
    assert [m["channel"].decode() for m in heard] == [f"{namespace}:users"] * 2, heard
    assert not [f for f in replier_tab.frames if f["type"] in ("notification", "notifications")]
    listing = (await asyncio.to_thread(offline.get, "/api/notifications")).json()
    assert listing["unread"] == 2 and [n["post_id"] for n in listing["notifications"]] == post_ids[::-1]
    assert db_fetchval(pg_url, "SELECT count(*) FROM notifications WHERE post_id = $1", post_ids[1]) == crowd + 3


async def test_a_vote_reaches_the_voters_other_sockets_as_my_vote(spawn, watchers):
    """Ada votes on process A: each of her sockets (A and B) gets {"type":"my_vote"} with the post, score and
    her vote, and withdrawing sends my_vote 0; Bob's socket gets no such frame."""
    a, b = spawn(), spawn()
    ada = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    bob = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    mod = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    from support.databases import make_moderator
    make_moderator(a.env["DATABASE_URL"], mod.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    made = await asyncio.to_thread(new_thread, bob, slug)
    tid, qid = made["thread"]["id"], made["question"]["id"]
    tabs = [await on_channel(await watchers(url, ada.session_cookie)) for url in (a.ws_url, b.ws_url)]
    other = await on_channel(await watchers(b.ws_url, bob.session_cookie))
    r = await asyncio.to_thread(ada.put, f"/api/posts/{qid}/vote", json={"value": 1})
    assert r.status_code == 200, r.text
    for tab in tabs:
        f = await tab.wait_for(lambda f: f["type"] == "my_vote", timeout=5)
        assert f == {"type": "my_vote", "thread": tid, "post_id": qid, "score": 1, "my_vote": 1}
    marks = [len(t.frames) for t in tabs]
    r = await asyncio.to_thread(ada.put, f"/api/posts/{qid}/vote", json={"value": 0})
    for tab, mark in zip(tabs, marks, strict=True):
        f = await tab.wait_for(lambda f: f["type"] == "my_vote", start=mark, timeout=5)
        assert f["my_vote"] == 0 and f["score"] == 0
    await asyncio.sleep(0.3)
    assert not [f for f in other.frames if f["type"] == "my_vote"]
