"""Sign-ins racing a suspension or a password change (issue 25, finding 2): whatever the interleaving, no
session made by a racing sign-in outlives the change, over HTTP or on a socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from support.api import Api
from support.databases import make_moderator

PASSWORD = "correct horse battery"
RACERS = 24
ROUNDS = 3
# The racers start over SPREAD seconds and the change goes out at CHANGE_AT: its two argon2 hashes queue
# behind the racers' on the server, so many racers read the user before the change commits and check the
# password after it (before the epoch, 1-17 of 24 kept a working session).
SPREAD = 0.3
CHANGE_AT = 0.05
WITHIN = 8.0  # the contract's bound for closing a socket is 5 s


@pytest.fixture()
def site(spawn: Any) -> Any:
    """A server hashing at its real cost (tests/conftest.py makes the suite's cheaper): the change's hashes queue."""
    return spawn(PARLEY_PASSWORD_HASH_MEMORY_KIB="19456")


async def race(site: Any, name: str, password: str, change: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
               changer_cookie: str, watchers: Any) -> tuple[list[str], list[Any]]:
    """RACERS sign-ins spread over SPREAD seconds, `change` sent at CHANGE_AT; each sign-in that succeeds
    opens a socket with its cookie at once. Returns the racers' cookies and sockets."""
    cookies: list[str] = []
    sockets: list[Any] = []
    # Every client connected beforehand (a jar of its own each), so the requests leave when planned.
    clients = [httpx.AsyncClient(base_url=site.url, timeout=60) for _ in range(RACERS + 1)]
    await asyncio.gather(*(c.get("/healthz") for c in clients))
    clients[-1].headers["Cookie"] = f"parley_session={changer_cookie}"

    async def racer(i: int) -> None:
        await asyncio.sleep(i * SPREAD / RACERS)
        r = await clients[i].post("/api/session", json={"username": name, "password": password})
        assert r.status_code in (200, 401, 403), r.text
        if r.status_code == 200:
            cookie = r.cookies["parley_session"]
            cookies.append(cookie)
            sockets.append(await watchers(site.ws_url, cookie))

    async def changer() -> None:
        await asyncio.sleep(CHANGE_AT)
        r = await change(clients[-1])
        assert r.status_code == 200, r.text

    try:
        await asyncio.gather(changer(), *(racer(i) for i in range(RACERS)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return cookies, sockets


async def assert_all_ended(site: Any, cookies: list[str], sockets: list[Any]) -> None:
    """No racer's cookie works over HTTP, and every racer's socket is closed with 4001 (or was a guest's)."""
    async with httpx.AsyncClient(base_url=site.url, timeout=30) as http:
        alive = [c for c in cookies
                 if (await http.get("/api/me", headers={"Cookie": f"parley_session={c}"})).status_code == 200]
    assert not alive, f"{len(alive)} of {len(cookies)} racing sessions outlived the change"
    deadline = asyncio.get_running_loop().time() + WITHIN
    signed_in = [w for w in sockets if w.frames[0]["user"] is not None]
    while any(w.closed is None for w in signed_in) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert [w.closed for w in signed_in] == [4001] * len(signed_in)


async def test_sign_ins_racing_a_suspension_leave_no_session(site: Any, pg_url: str, watchers: Any) -> None:
    """24 sign-ins racing a suspension, three rounds: afterwards none of their sessions answers /api/me, every
    socket they opened is closed with 4001, and lifting the suspension brings none of them back."""
    mod = Api(site.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    for _ in range(ROUNDS):
        name = Api(site.url).sign_up(password=PASSWORD).user["username"]  # type: ignore[index]
        until = (datetime.now(UTC) + timedelta(days=1)).isoformat()

        def suspend(http: httpx.AsyncClient, name: str = name, until: str = until) -> Awaitable[httpx.Response]:
            return http.put(f"/api/users/{name}/suspension", json={"until": until})

        cookies, sockets = await race(site, name, PASSWORD, suspend, mod.session_cookie, watchers)
        await assert_all_ended(site, cookies, sockets)
        assert (await asyncio.to_thread(mod.put, f"/api/users/{name}/suspension",
                                        json={"until": None})).status_code == 200
        await assert_all_ended(site, cookies, [])


async def test_sign_ins_racing_a_password_change_leave_no_session(site: Any, watchers: Any) -> None:
    """24 sign-ins with the old password racing a password change, three rounds: afterwards none of their
    sessions answers /api/me and every socket they opened is closed with 4001; the changer's new one works."""
    for _ in range(ROUNDS):
        owner = Api(site.url).sign_up(password=PASSWORD)
        name = owner.user["username"]  # type: ignore[index]

        def change(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return http.put("/api/me/password",
                            json={"old_password": PASSWORD, "new_password": "a brand new password"})

        cookies, sockets = await race(site, name, PASSWORD, change, owner.session_cookie, watchers)
        await assert_all_ended(site, cookies, sockets)
