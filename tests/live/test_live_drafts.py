"""Draft frames on the user channel: a draft saved on one process reaches every socket of its writer on every
process (another device's tab), its deletion by the post that sends it too, and nobody else's socket."""

from __future__ import annotations

import asyncio

from support.api import Api, new_thread, unique


async def on_channel(w):
    """The socket is on its user channel: the server answers frames only after subscribing it (ws._serve)."""
    await w.send({"type": "ping", "id": "ready"})
    await w.wait_for(lambda f: f["type"] == "pong" and f["id"] == "ready")
    return w


def _draft(key: str, body: object = ...):
    return lambda f: f["type"] == "draft" and f["draft"]["key"] == key and (body is ... or f["draft"]["body"] == body)


async def test_a_draft_reaches_the_writers_sockets_on_every_process(spawn, watchers):
    """Ada saves a draft on process A from her laptop's session; her phone's socket on B and her laptop's on A get
    {"type":"draft"} with the new revision; the response that sends it deletes it (body null); Bob hears nothing."""
    a, b = spawn(), spawn()
    laptop = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    phone = Api(b.url)
    r = await asyncio.to_thread(phone.post, "/api/session", json={"username": laptop.user["username"],
                                                                  "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    bob = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    from support.databases import make_moderator
    make_moderator(a.env["DATABASE_URL"], bob.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(bob.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    tid = (await asyncio.to_thread(new_thread, bob, slug))["thread"]["id"]
    tabs = [await on_channel(await watchers(a.ws_url, laptop.session_cookie)),
            await on_channel(await watchers(b.ws_url, phone.session_cookie))]
    other = await on_channel(await watchers(b.ws_url, bob.session_cookie))
    key = f"thread:{tid}"
    r = await asyncio.to_thread(laptop.put, f"/api/me/drafts/{key}", json={"body": "Boil it for"})
    assert r.status_code == 200, r.text
    for tab in tabs:
        frame = await tab.wait_for(_draft(key, "Boil it for"), timeout=5)
        assert set(frame) == {"type", "draft"} and frame["draft"]["revision"] == 1
        assert set(frame["draft"]) == {"key", "body", "revision", "updated_at"}
    r = await asyncio.to_thread(phone.post, f"/api/threads/{tid}/posts", json={"body": "Boil it for seven minutes"})
    assert r.status_code == 201, r.text
    for tab in tabs:
        gone = await tab.wait_for(_draft(key, None), timeout=5)
        assert gone["draft"]["revision"] == 2
    await asyncio.sleep(0.3)
    assert not [f for f in other.frames if f["type"] == "draft"]
