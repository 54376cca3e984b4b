"""Trust live (CONTRACT rev. 3 "Trust and spam"): reputation changes reach the user's sockets on every process."""

from __future__ import annotations

import asyncio

from support.api import Api, new_thread, unique
from support.databases import make_moderator


async def on_channel(w):
    """The socket is on its user channel: the server answers frames only after subscribing it (ws._serve)."""
    await w.send({"type": "ping", "id": "ready"})
    await w.wait_for(lambda f: f["type"] == "pong" and f["id"] == "ready")
    return w


async def test_a_reputation_change_reaches_every_socket_of_the_user(spawn, watchers):
    """Ada up-votes Bob's question on process A: Bob's sockets on A and B get {"type":"reputation"} with his new
    sum and the ledger row; the unvote sends the loss; Ada's socket gets no reputation frame."""
    a, b = spawn(), spawn()
    ada, bob, mod = [await asyncio.to_thread(lambda: Api(a.url).sign_up()) for _ in range(3)]
    make_moderator(a.env["DATABASE_URL"], mod.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    qid = (await asyncio.to_thread(new_thread, bob, slug))["question"]["id"]
    tabs = [await on_channel(await watchers(url, bob.session_cookie)) for url in (a.ws_url, b.ws_url)]
    voter = await on_channel(await watchers(b.ws_url, ada.session_cookie))
    assert (await asyncio.to_thread(ada.put, f"/api/posts/{qid}/vote", json={"value": 1})).status_code == 200
    for tab in tabs:
        f = await tab.wait_for(lambda f: f["type"] == "reputation", timeout=5)
        assert f["reputation"] == 6 and f["event"]["delta"] == 5 and f["event"]["reason"] == "vote_up"
        assert f["event"]["post_id"] == qid
    marks = [len(t.frames) for t in tabs]
    assert (await asyncio.to_thread(ada.put, f"/api/posts/{qid}/vote", json={"value": 0})).status_code == 200
    for tab, mark in zip(tabs, marks, strict=True):
        f = await tab.wait_for(lambda f: f["type"] == "reputation", start=mark, timeout=5)
        assert f["reputation"] == 1 and f["event"] == {**f["event"], "delta": -5, "reason": "vote_undone"}
    await asyncio.sleep(0.3)
    assert not [f for f in voter.frames if f["type"] == "reputation"]


async def test_a_silence_reaches_every_socket_on_every_process(spawn, watchers):
    """The third spam flag, made on process A, silences Mallory: a guest's and a member's sockets on process B get
    {"type":"silenced"} naming her, and the thread's watchers get a thread.updated event (its page changed); a
    moderator's lifting it sends silenced false."""
    a, b = spawn(), spawn()
    mallory, mod = [await asyncio.to_thread(lambda: Api(a.url).sign_up()) for _ in range(2)]
    make_moderator(a.env["DATABASE_URL"], mod.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    made = await asyncio.to_thread(new_thread, mallory, slug)
    tid, qid = made["thread"]["id"], made["question"]["id"]
    guest = await on_channel(await watchers(b.ws_url))
    await guest.send({"type": "subscribe", "thread": tid})
    await guest.wait_for(lambda f: f["type"] == "subscribed", timeout=5)
    flaggers = [await asyncio.to_thread(lambda: Api(a.url).sign_up()) for _ in range(3)]
    member = await on_channel(await watchers(b.ws_url, flaggers[0].session_cookie))
    for f in flaggers:
        r = await asyncio.to_thread(f.post, f"/api/posts/{qid}/flags", json={"reason": "spam"})
        assert r.status_code == 201, r.text
    for sock in (guest, member):
        f = await sock.wait_for(lambda f: f["type"] == "silenced", timeout=5)
        assert f["user"]["id"] == mallory.user["id"] and f["silenced"] is True
    ev = await guest.wait_for(lambda f: f["type"] == "event" and f["name"] == "thread.updated", timeout=5)
    assert ev["thread"] == tid
    mark = len(guest.frames)
    r = await asyncio.to_thread(mod.put, f"/api/users/{mallory.user['username']}/silence", json={"silenced": False})
    assert r.status_code == 200, r.text
    f = await guest.wait_for(lambda f: f["type"] == "silenced", start=mark, timeout=5)
    assert f["silenced"] is False
