"""A suspension reaches the member's sockets on every process: closed with 4001 within 5 s, gone from
Active Now at once, while another member's sockets stay open."""

from __future__ import annotations

import asyncio

import httpx

from helpers import Api, make_moderator


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
