"""Moderation live: a suspension closes the member's sockets on every process (4001 within 5 s, gone from
Active Now at once, a bystander untouched), and every moderator's page hears the open-flag count."""

from __future__ import annotations

import asyncio

import httpx

from support.api import Api
from support.databases import make_moderator


async def _until_closed(w, timeout: float) -> int | None:
    deadline = asyncio.get_running_loop().time() + timeout
    while w.closed is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return w.closed


async def test_suspension_closes_sockets_on_two_processes_within_5s(spawn, pg_url, watchers):
    """Suspending a member closes their sockets on both processes with 4001; a bystander's stay open."""
    a, b = spawn(), spawn()
    mod = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    make_moderator(pg_url, mod.user["username"])
    victim = await asyncio.to_thread(lambda: Api(b.url).sign_up())
    bystander = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    sockets = [await watchers(p.ws_url, victim.session_cookie) for p in (a, b, b)]
    calm = await watchers(a.ws_url, bystander.session_cookie)
    # Both processes list the victim in Active Now before the suspension.
    await calm.wait_for(lambda f: f["type"] == "presence" and f["scope"] == "site"
                        and victim.user["id"] in [u["id"] for u in f["users"]], timeout=15)
    start = asyncio.get_running_loop().time()
    r = await asyncio.to_thread(mod.put, f"/api/users/{victim.user['username']}/suspension",
                                json={"until": "2099-01-01T00:00:00Z", "reason": "test"})
    assert r.status_code == 200, r.text
    codes = [await _until_closed(w, 5.0) for w in sockets]
    assert codes == [4001, 4001, 4001], codes
    assert asyncio.get_running_loop().time() - start < 5.0
    # Gone from Active Now at once (no grace period for an ended session), and the bystander is untouched.
    await calm.wait_for(lambda f: f["type"] == "presence" and f["scope"] == "site"
                        and victim.user["id"] not in [u["id"] for u in f["users"]], timeout=5)
    assert calm.closed is None
    me = httpx.get(b.url + "/api/me", cookies={"parley_session": victim.session_cookie}, timeout=10)
    assert me.status_code == 401


async def test_moderators_hear_the_open_flag_count_on_every_process(spawn, pg_url, watchers):
    """A flag raises the count on each moderator's sockets (two processes), settling lowers it; members hear none."""
    a, b = spawn(), spawn()
    mod = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    make_moderator(pg_url, mod.user["username"])
    author = await asyncio.to_thread(lambda: Api(a.url).sign_up())
    member = await asyncio.to_thread(lambda: Api(b.url).sign_up())
    slug = "c" + mod.user["username"]
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug[:60], "name": "C"})).status_code \
        == 201
    r = await asyncio.to_thread(author.post, "/api/threads", json={"category": slug[:60], "title": "t", "body": "b"})
    post_id = r.json()["question"]["id"]
    on_a, on_b = await watchers(a.ws_url, mod.session_cookie), await watchers(b.ws_url, mod.session_cookie)
    bystander = await watchers(b.ws_url, member.session_cookie)
    before = (await asyncio.to_thread(mod.get, "/api/flags")).json()["open"]
    r = await asyncio.to_thread(member.post, f"/api/posts/{post_id}/flags", json={"reason": "spam"})
    assert r.status_code == 201, r.text
    for w in (on_a, on_b):
        await w.wait_for(lambda f: f["type"] == "flags" and f["open"] == before + 1, timeout=5)
    r = await asyncio.to_thread(mod.put, f"/api/flags/{r.json()['flag']['id']}", json={"status": "dismissed"})
    assert r.status_code == 200, r.text
    for w in (on_a, on_b):
        await w.wait_for(lambda f: f["type"] == "flags" and f["open"] == before, timeout=5)
    assert not [f for f in bystander.frames if f["type"] == "flags"]
