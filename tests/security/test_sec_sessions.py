"""Sessions: a fresh id at sign-in, revoked at sign-out and on a password change, expired when idle;
the cookie is Secure when https comes from a trusted proxy, and only then."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
from websockets.asyncio.client import connect

from support.api import Api, unique

PASSWORD = "correct horse battery"


def with_cookie(url: str, cookie: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Cookie": f"parley_session={cookie}"})


def set_cookie(r: httpx.Response) -> str:
    return r.headers.get("set-cookie", "")


def test_signin_rotates_session_id_and_revokes_planted_one(server: Any) -> None:
    """Signing in issues a new session id; a cookie planted before sign-in is revoked, never promoted."""
    victim = Api(server.url).sign_up()
    attacker = Api(server.url).sign_up()
    planted = attacker.session_cookie
    browser = with_cookie(server.url, planted)
    name = victim.user["username"]  # type: ignore[index]
    r = browser.post("/api/session", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200
    fresh = r.cookies.get("parley_session")
    assert fresh and fresh != planted and fresh != victim.session_cookie
    assert with_cookie(server.url, planted).get("/api/me").status_code == 401
    me = with_cookie(server.url, fresh).get("/api/me")
    assert me.status_code == 200 and me.json()["user"]["id"] == victim.user["id"]  # type: ignore[index]
    # The victim's earlier session is still theirs (signing in elsewhere does not sign out other devices).
    assert victim.get("/api/me").status_code == 200


def test_session_cookie_flags(server: Any) -> None:
    """The session cookie is HttpOnly, SameSite=Lax, path /, and carries a signature (not a bare id)."""
    r = httpx.post(server.url + "/api/users", json={"username": unique(), "password": PASSWORD})
    header = set_cookie(r).lower()
    assert "httponly" in header and "samesite=lax" in header and "path=/" in header
    assert "secure" not in header  # plain http from a direct client
    value = r.cookies["parley_session"]
    assert "." in value
    tampered = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    assert with_cookie(server.url, tampered).get("/api/me").status_code == 401


def test_signout_revokes_server_side(server: Any) -> None:
    """After DELETE /api/session a copy of the old cookie no longer works, over HTTP or on /ws."""
    user = Api(server.url).sign_up()
    cookie = user.session_cookie
    r = user.delete("/api/session")
    assert r.status_code == 204
    assert "parley_session=" in set_cookie(r)
    stolen = with_cookie(server.url, cookie)
    assert stolen.get("/api/me").status_code == 401
    assert stolen.post("/api/threads", json={"category": "x", "title": "t", "body": "b"}).status_code == 401
    assert stolen.delete("/api/session").status_code == 401

    async def hello() -> Any:
        async with connect(server.ws_url, additional_headers={"Cookie": f"parley_session={cookie}"}) as ws:
            return json.loads(await ws.recv())
    assert asyncio.run(hello())["user"] is None


def test_password_change_revokes_every_other_session(server: Any) -> None:
    """PUT /api/me/password revokes all the user's sessions, issues a new one, and swaps the password."""
    laptop = Api(server.url).sign_up()
    name = laptop.user["username"]  # type: ignore[index]
    phone = httpx.Client(base_url=server.url)
    assert phone.post("/api/session", json={"username": name, "password": PASSWORD}).status_code == 200
    old_laptop = laptop.session_cookie
    wrong = laptop.put("/api/me/password", json={"old_password": "not the password", "new_password": "n" * 12})
    assert wrong.status_code == 403 and wrong.json()["error"]["field"] == "old_password"
    assert phone.get("/api/me").status_code == 200  # a wrong attempt changes nothing
    r = laptop.put("/api/me/password", json={"old_password": PASSWORD, "new_password": "brand new password"})
    assert r.status_code == 200, r.text
    new_cookie = r.cookies.get("parley_session")
    assert new_cookie and new_cookie != old_laptop
    assert with_cookie(server.url, old_laptop).get("/api/me").status_code == 401
    assert phone.get("/api/me").status_code == 401
    assert with_cookie(server.url, new_cookie).get("/api/me").status_code == 200
    assert httpx.post(server.url + "/api/session", json={"username": name, "password": PASSWORD}).status_code == 401
    assert httpx.post(server.url + "/api/session",
                      json={"username": name, "password": "brand new password"}).status_code == 200


def test_session_expires_when_idle(spawn: Any) -> None:
    """With PARLEY_SESSION_IDLE_DAYS=0.0001 (8.6 s) a session unused for longer is refused (401)."""
    srv = spawn(PARLEY_SESSION_IDLE_DAYS="0.0001")
    user = Api(srv.url).sign_up()
    cookie = user.session_cookie
    assert "max-age=8" in user.post("/api/session", json={"username": user.user["username"],  # type: ignore[index]
                                                            "password": PASSWORD}).headers["set-cookie"].lower()
    fresh = user.session_cookie
    assert with_cookie(srv.url, fresh).get("/api/me").status_code == 200
    time.sleep(9.5)
    assert with_cookie(srv.url, fresh).get("/api/me").status_code == 401
    assert with_cookie(srv.url, cookie).get("/api/me").status_code == 401


def test_secure_cookie_only_behind_trusted_proxy(spawn: Any) -> None:
    """X-Forwarded-Proto: https makes the cookie Secure only when the peer is in PARLEY_TRUSTED_PROXIES."""
    trusting = spawn(PARLEY_TRUSTED_PROXIES="127.0.0.1/32")
    plain = spawn()
    https = {"X-Forwarded-Proto": "https"}

    def signup(srv: Any, headers: dict[str, str]) -> str:
        r = httpx.post(srv.url + "/api/users", json={"username": unique(), "password": PASSWORD}, headers=headers)
        assert r.status_code == 201, r.text
        return set_cookie(r).lower()

    assert "secure" in signup(trusting, https)
    assert "secure" not in signup(trusting, {})
    assert "secure" not in signup(trusting, {"X-Forwarded-Proto": "http"})
    assert "secure" not in signup(plain, https)
    # Behind the trusted proxy the page's origin is https://host; a forged http one is refused.
    host = trusting.url.removeprefix("http://")
    ok = httpx.post(trusting.url + "/api/users", json={"username": unique(), "password": PASSWORD},
                    headers={**https, "Origin": f"https://{host}"})
    assert ok.status_code == 201
    refused = httpx.post(plain.url + "/api/users", json={"username": unique(), "password": PASSWORD},
                         headers={**https, "Origin": f"https://{host}"})
    assert refused.status_code == 403
