"""API keys (server/api/apikeys.py, auth.session_of): hashed, scoped, deleted at once, last_used_at without a
write per request, Bearer without an Origin check, managed only with a session."""

from __future__ import annotations

import hashlib

import asyncpg
import httpx

from api_support import check_error
from support import http
from support.api import Api, new_thread


def make_key(api: Api, scopes: list[str], name: str = "bot") -> tuple[dict, str]:
    r = api.post("/api/me/api-keys", json={"name": name, "scopes": scopes})
    assert r.status_code == 201, r.text
    return r.json()["api_key"], r.json()["token"]


def bearer(url: str, method: str, path: str, token: str, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return http.request(method, f"{url}{path}", headers=headers, **kw)


async def test_key_is_shown_once_and_kept_as_a_hash(server, pg_url):
    """The token is in the 201 answer only; the list shows the key without it; the table holds its SHA-256."""
    alice = Api(server.url).sign_up()
    key, token = make_key(alice, ["read"], "CI reader")
    assert set(key) == {"id", "name", "scopes", "created_at", "last_used_at"}
    assert key["name"] == "CI reader" and key["scopes"] == ["read"] and key["last_used_at"] is None
    assert token.startswith("parley_") and len(token) > 40
    listed = alice.get("/api/me/api-keys").json()["api_keys"]
    assert listed == [key] and token not in alice.get("/api/me/api-keys").text
    conn = await asyncpg.connect(pg_url)
    try:
        stored = await conn.fetchval("SELECT token_hash FROM api_keys WHERE id = $1", key["id"])
        assert await conn.fetchval("SELECT count(*) FROM api_keys WHERE token_hash = $1", token) == 0
    finally:
        await conn.close()
    assert stored == hashlib.sha256(token.encode()).hexdigest()


def test_read_key_reads_and_may_not_write(server, forum):
    """A read key authenticates GETs as its user; any state change with it is 403 read_only_key."""
    alice = Api(server.url).sign_up()
    _, token = make_key(alice, ["read"])
    me = bearer(server.url, "GET", "/api/me", token)
    assert me.status_code == 200 and me.json()["user"]["id"] == alice.user["id"]
    r = bearer(server.url, "POST", "/api/threads", token,
               json={"category": forum["category"], "title": "t", "body": "b"})
    check_error(r, 403)
    assert r.json()["error"]["code"] == "read_only_key"


def test_write_key_posts_with_any_or_no_origin(server, forum):
    """A read+write key posts without an Origin header, and with a foreign one (the key is not ambient)."""
    alice = Api(server.url).sign_up()
    _, token = make_key(alice, ["write", "read"])
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    r = bearer(server.url, "POST", f"/api/threads/{tid}/posts", token, json={"body": "from a bot"})
    assert r.status_code == 201 and r.json()["post"]["author"]["id"] == alice.user["id"]
    r = bearer(server.url, "POST", f"/api/threads/{tid}/posts", token, json={"body": "from afar"},
               headers={"Origin": "https://elsewhere.example"})
    assert r.status_code == 201, r.text


def test_deleted_or_unknown_key_is_401_and_never_falls_back_to_the_cookie(server, forum):
    """Deleting a key ends it at once (401 bad_api_key); a bad Bearer with a good cookie is 401 too."""
    alice = Api(server.url).sign_up()
    key, token = make_key(alice, ["read", "write"])
    assert bearer(server.url, "GET", "/api/me", token).status_code == 200
    assert alice.delete(f"/api/me/api-keys/{key['id']}").status_code == 204
    r = bearer(server.url, "GET", "/api/me", token)
    check_error(r, 401)
    assert r.json()["error"]["code"] == "bad_api_key"
    assert alice.get("/api/me/api-keys").json()["api_keys"] == []
    for bad in ("Bearer nonsense", "Bearer ", "Basic abc"):
        r = alice.get("/api/me", headers={"Authorization": bad})
        assert r.status_code == 401, bad
    # Even a guest's read with a bad key is refused: the client meant to be someone.
    assert bearer(server.url, "GET", "/api/threads", "parley_nope").status_code == 401


def test_keys_are_managed_only_with_a_session(server):
    """A key (even read+write) cannot list, make or delete keys: 403 session_required."""
    alice = Api(server.url).sign_up()
    key, token = make_key(alice, ["read", "write"])
    for method, path, body in (("GET", "/api/me/api-keys", None),
                               ("POST", "/api/me/api-keys", {"name": "more", "scopes": ["read"]}),
                               ("DELETE", f"/api/me/api-keys/{key['id']}", None)):
        r = bearer(server.url, method, path, token, json=body)
        check_error(r, 403)
        assert r.json()["error"]["code"] == "session_required", (method, path)
    assert len(alice.get("/api/me/api-keys").json()["api_keys"]) == 1


def test_bad_scopes_and_names_are_422(server):
    """scopes must be ["read"] or ["read","write"] (any order); name 1–64 characters."""
    alice = Api(server.url).sign_up()
    for body, field in (({"name": "x", "scopes": ["write"]}, "scopes"), ({"name": "x", "scopes": []}, "scopes"),
                        ({"name": "x", "scopes": ["admin"]}, "scopes"), ({"name": " ", "scopes": ["read"]}, "name"),
                        ({"name": "x" * 65, "scopes": ["read"]}, "name")):
        r = alice.post("/api/me/api-keys", json=body)
        check_error(r, 422)
        assert r.json()["error"]["field"] == field, body


def test_someone_elses_key_cannot_be_deleted(server):
    """Deleting a key that is not yours is 404, and the key keeps working."""
    alice, mallory = Api(server.url).sign_up(), Api(server.url).sign_up()
    key, token = make_key(alice, ["read"])
    check_error(mallory.delete(f"/api/me/api-keys/{key['id']}"), 404)
    assert bearer(server.url, "GET", "/api/me", token).status_code == 200


async def test_last_used_at_is_written_at_most_once_a_minute(server, pg_url):
    """The first use sets last_used_at; uses within the minute leave the row alone; a use after it moves it."""
    alice = Api(server.url).sign_up()
    key, token = make_key(alice, ["read"])
    conn = await asyncpg.connect(pg_url)
    try:
        async def row() -> asyncpg.Record:
            return await conn.fetchrow("SELECT last_used_at, xmin::text AS version FROM api_keys WHERE id = $1",
                                       key["id"])
        assert (await row())["last_used_at"] is None
        assert bearer(server.url, "GET", "/api/me", token).status_code == 200
        first = await row()
        assert first["last_used_at"] is not None
        for _ in range(5):
            assert bearer(server.url, "GET", "/api/me", token).status_code == 200
        assert await row() == first  # same time, same row version: no write
        await conn.execute("UPDATE api_keys SET last_used_at = last_used_at - interval '2 minutes' WHERE id = $1",
                           key["id"])
        assert bearer(server.url, "GET", "/api/me", token).status_code == 200
        assert (await row())["last_used_at"] > first["last_used_at"]
    finally:
        await conn.close()
    assert alice.get("/api/me/api-keys").json()["api_keys"][0]["last_used_at"] is not None


async def test_suspended_users_key_is_401(server, forum):
    """A suspended user's keys stop working (401) until the suspension ends."""
    alice = Api(server.url).sign_up()
    _, token = make_key(alice, ["read"])
    r = forum["mod"].put(f"/api/users/{alice.user['username']}/suspension", json={"until": "2099-01-01T00:00:00Z"})
    assert r.status_code == 200
    assert bearer(server.url, "GET", "/api/me", token).status_code == 401
    forum["mod"].put(f"/api/users/{alice.user['username']}/suspension", json={"until": None})
    assert bearer(server.url, "GET", "/api/me", token).status_code == 200
