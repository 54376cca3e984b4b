"""API keys on the websocket, against a real server: a Bearer handshake is its user from any origin; deleting the
key closes its sockets with 4001 at once; a bad key is a guest."""

from __future__ import annotations

import asyncio

from support.api import Api
from support.ws import Watcher


async def _until_closed(w: Watcher, timeout: float) -> int | None:
    deadline = asyncio.get_running_loop().time() + timeout
    while w.closed is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return w.closed


async def test_key_socket_is_its_user_and_closes_when_the_key_is_deleted(server):
    """A socket opened with a key (and a foreign Origin) says hello as its user and outlives the session sweeps;
    deleting the key closes it with 4001 within 5 s, while the user's cookie socket stays open."""
    alice = await asyncio.to_thread(lambda: Api(server.url).sign_up())
    r = await asyncio.to_thread(alice.post, "/api/me/api-keys", json={"name": "bot", "scopes": ["read"]})
    key, token = r.json()["api_key"], r.json()["token"]
    by_key = await Watcher.open(server.ws_url, origin="https://elsewhere.example",
                                headers={"Authorization": f"Bearer {token}"})
    by_cookie = await Watcher.open(server.ws_url, alice.session_cookie)
    try:
        hello = next(f for f in by_key.frames if f["type"] == "hello")
        assert hello["user"]["id"] == alice.user["id"]
        await asyncio.sleep(12)  # two of the hub's session sweeps (every 5 s): a working key's socket stays
        assert by_key.closed is None
        r = await asyncio.to_thread(alice.delete, f"/api/me/api-keys/{key['id']}")
        assert r.status_code == 204
        assert await _until_closed(by_key, 5.0) == 4001
        await asyncio.sleep(0.5)
        assert by_cookie.closed is None
    finally:
        await by_key.close()
        await by_cookie.close()


async def test_bad_key_socket_is_a_guest(server):
    """A handshake with an unknown key is a read-only guest, never the cookie's user."""
    alice = await asyncio.to_thread(lambda: Api(server.url).sign_up())
    w = await Watcher.open(server.ws_url, alice.session_cookie, headers={"Authorization": "Bearer parley_nope"})
    try:
        assert next(f for f in w.frames if f["type"] == "hello")["user"] is None
    finally:
        await w.close()
