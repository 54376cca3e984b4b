"""Deleting an account against a real server: every socket of the account closes with 4001 at once."""

from __future__ import annotations

import asyncio

from support.api import Api
from support.ws import Watcher


async def _until_closed(w: Watcher, timeout: float) -> int | None:
    deadline = asyncio.get_running_loop().time() + timeout
    while w.closed is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return w.closed


async def test_deleting_the_account_closes_its_sockets(server):
    """DELETE /api/me closes the account's cookie and key sockets with 4001; another user's socket stays open."""
    alice = await asyncio.to_thread(lambda: Api(server.url).sign_up())
    bob = await asyncio.to_thread(lambda: Api(server.url).sign_up())
    r = await asyncio.to_thread(alice.post, "/api/me/api-keys", json={"name": "bot", "scopes": ["read"]})
    token = r.json()["token"]
    by_cookie = await Watcher.open(server.ws_url, alice.session_cookie)
    by_key = await Watcher.open(server.ws_url, headers={"Authorization": f"Bearer {token}"})
    other = await Watcher.open(server.ws_url, bob.session_cookie)
    try:
        r = await asyncio.to_thread(alice.request, "DELETE", "/api/me", json={"password": "correct horse battery"})
        assert r.status_code == 204
        assert await _until_closed(by_cookie, 5.0) == 4001
        assert await _until_closed(by_key, 5.0) == 4001
        await asyncio.sleep(0.5)
        assert other.closed is None
    finally:
        for w in (by_cookie, by_key, other):
            await w.close()
