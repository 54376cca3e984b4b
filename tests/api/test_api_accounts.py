"""Accounts over HTTP: sign up, sign in, sign out, /api/me, password change, cookies and the Origin check."""

from __future__ import annotations

import httpx
import pytest

from api_support import PASSWORD, check_error, check_user_own
from support.api import Api, new_thread, unique


def _set_cookie(r: httpx.Response) -> str:
    cookies = [v for k, v in r.headers.multi_items() if k.lower() == "set-cookie" and v.startswith("parley_session=")]
    assert len(cookies) == 1, r.headers
    return cookies[0]


def test_sign_up_answers_201_with_full_user_and_signs_in(server):
    """POST /api/users → 201 {user} (full user, not a moderator) and the new session works for /api/me."""
    name = unique()
    api = Api(server.url)
    r = api.post("/api/users", json={"username": name, "password": PASSWORD, "display_name": "  Ann Example "})
    assert r.status_code == 201, r.text
    user = r.json()["user"]
    check_user_own(user)
    assert user["username"] == name and user["display_name"] == "Ann Example" and user["is_moderator"] is False
    me = api.get("/api/me")
    assert me.status_code == 200 and me.json() == {"user": user}


def test_session_cookie_is_httponly_samesite_lax_and_signed(server):
    """The session cookie is HttpOnly, SameSite=Lax, path /, and its value is signed (not a bare id)."""
    r = httpx.post(server.url + "/api/users", json={"username": unique(), "password": PASSWORD})
    header = _set_cookie(r)
    attrs = [a.strip().lower() for a in header.split(";")]
    assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs, header
    value = header.split(";")[0].split("=", 1)[1]
    assert "." in value, value
    api = httpx.Client(base_url=server.url, cookies={"parley_session": value + "x"})
    check_error(api.get("/api/me"), 401, "unauthorized")


def test_display_name_defaults_to_username(server):
    """Without display_name, the display name is the username."""
    name = unique()
    api = Api(server.url).sign_up(name)
    assert api.user["display_name"] == name


@pytest.mark.parametrize("body, field", [
    ({"username": "ab", "password": PASSWORD}, "username"),
    ({"username": "a" * 33, "password": PASSWORD}, "username"),
    ({"username": "bad name", "password": PASSWORD}, "username"),
    ({"username": "bad/name", "password": PASSWORD}, "username"),
    ({"username": "ünïcode", "password": PASSWORD}, "username"),
    ({"username": "GOOD_name", "password": "short7!"}, "password"),
    ({"username": "GOOD_name", "password": "x" * 257}, "password"),
    ({"username": "GOOD_name", "password": PASSWORD, "display_name": "   "}, "display_name"),
    ({"username": "GOOD_name", "password": PASSWORD, "display_name": "d" * 65}, "display_name"),
    ({"password": PASSWORD}, "username"),
    ({"username": "GOOD_name"}, "password"),
    ({"username": 12345, "password": PASSWORD}, "username"),
    ({"username": "GOOD_name", "password": 12345678}, "password"),
])
def test_sign_up_validation_is_422_naming_the_field(server, body, field):
    """A sign-up breaking a limit of the contract → 422 with error.field naming it."""
    check_error(httpx.post(server.url + "/api/users", json=body), 422, "invalid", field)


def test_limits_at_the_edges_are_accepted(server):
    """username of 3 and 32 characters, password of 8 and 256, display_name of 64 are all fine."""
    for username, password in ((unique("a")[:3], "x" * 8), (unique("b") + "x" * 21, "y" * 256)):
        r = httpx.post(server.url + "/api/users",
                       json={"username": username, "password": password, "display_name": "d" * 64})
        assert r.status_code in (201, 409), r.text  # 3-character names may already exist
    r = httpx.post(server.url + "/api/users", json={"username": (unique("c") * 4)[:32], "password": "z" * 8})
    assert r.status_code == 201, r.text


def test_username_taken_case_insensitively_is_409(server):
    """A second account whose name differs only in case → 409 username_taken (field username)."""
    name = unique("Case")
    Api(server.url).sign_up(name)
    r = httpx.post(server.url + "/api/users", json={"username": name.upper(), "password": PASSWORD})
    check_error(r, 409, "username_taken", "username")


def test_sign_in_with_right_password_any_case(server):
    """POST /api/session with the right password (username in another case) → 200 {user} and a working cookie."""
    name = unique("Mixed")
    Api(server.url).sign_up(name)
    api = httpx.Client(base_url=server.url)
    r = api.post("/api/session", json={"username": name.lower(), "password": PASSWORD})
    assert r.status_code == 200, r.text
    check_user_own(r.json()["user"])
    assert r.json()["user"]["username"] == name
    _set_cookie(r)
    assert api.get("/api/me").json()["user"]["username"] == name


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_sign_in_failure_is_401(server, who):
    """A wrong password or an unknown username → 401 with the error body and no cookie."""
    name = unique()
    Api(server.url).sign_up(name)
    body = {"username": name, "password": "wrong password"} if who == "wrong password" else \
        {"username": unique("nobody"), "password": PASSWORD}
    r = httpx.post(server.url + "/api/session", json=body)
    check_error(r, 401)
    assert "set-cookie" not in r.headers


def test_sign_in_body_must_have_both_fields(server):
    """POST /api/session without a password → 422 field password."""
    check_error(httpx.post(server.url + "/api/session", json={"username": "x"}), 422, "invalid", "password")


def test_me_requires_a_session(server):
    """GET /api/me as a guest → 401 with the error body."""
    check_error(httpx.get(server.url + "/api/me"), 401, "unauthorized")


def test_sign_out_revokes_the_session_server_side(server):
    """DELETE /api/session → 204; replaying the old cookie value afterwards is a guest (401)."""
    api = Api(server.url).sign_up()
    old = api.session_cookie
    assert old
    r = api.delete("/api/session")
    assert r.status_code == 204 and r.content == b""
    replay = httpx.Client(base_url=server.url, cookies={"parley_session": old})
    check_error(replay.get("/api/me"), 401)
    check_error(replay.post("/api/threads", json={"category": "x", "title": "t", "body": "b"}), 401)
    check_error(replay.delete("/api/session"), 401)


def test_sign_out_only_ends_that_session(server):
    """Signing out in one browser leaves the same user's other session signed in."""
    name = unique()
    a = Api(server.url).sign_up(name)
    b = httpx.Client(base_url=server.url)
    assert b.post("/api/session", json={"username": name, "password": PASSWORD}).status_code == 200
    assert a.delete("/api/session").status_code == 204
    assert b.get("/api/me").status_code == 200


def test_sign_out_as_guest_is_401(server):
    """DELETE /api/session without a session → 401."""
    check_error(httpx.delete(server.url + "/api/session"), 401)


def test_sign_in_replaces_a_planted_session(server):
    """Signing in issues a fresh session id; the cookie the browser had before no longer works."""
    name = unique()
    api = Api(server.url).sign_up(name)
    before = api.session_cookie
    r = api.post("/api/session", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200
    assert api.session_cookie and api.session_cookie != before
    check_error(httpx.get(server.url + "/api/me", cookies={"parley_session": before}), 401)


def test_change_password_revokes_other_sessions(server):
    """PUT /api/me/password: the old password is checked, other sessions end, the caller stays signed in."""
    name = unique()
    a = Api(server.url).sign_up(name)
    b = httpx.Client(base_url=server.url)
    assert b.post("/api/session", json={"username": name, "password": PASSWORD}).status_code == 200
    check_error(a.put("/api/me/password", json={"old_password": "not it at all", "new_password": "n" * 10}),
                403, "wrong_password", "old_password")
    check_error(a.put("/api/me/password", json={"old_password": PASSWORD, "new_password": "short"}),
                422, "invalid", "new_password")
    r = a.put("/api/me/password", json={"old_password": PASSWORD, "new_password": "brand new password"})
    assert r.status_code == 200, r.text
    check_user_own(r.json()["user"])
    assert a.get("/api/me").status_code == 200
    check_error(b.get("/api/me"), 401)
    check_error(httpx.post(server.url + "/api/session", json={"username": name, "password": PASSWORD}), 401)
    assert httpx.post(server.url + "/api/session",
                      json={"username": name, "password": "brand new password"}).status_code == 200


def test_change_password_needs_a_session(server):
    """PUT /api/me/password as a guest → 401."""
    check_error(httpx.put(server.url + "/api/me/password", json={"old_password": "a" * 8, "new_password": "b" * 8}),
                401)


# -- Origin ------------------------------------------------------------------

def test_foreign_origin_is_refused_on_state_changing_requests(forum):
    """A state-changing request with a foreign Origin → 403 bad_origin with the error body, nothing changed."""
    api = Api(forum["url"]).sign_up()
    thread = new_thread(forum["mod"], forum["category"])
    tid, qid = thread["thread"]["id"], thread["question"]["id"]
    evil = {"Origin": "https://evil.example"}
    body = {"category": forum["category"], "title": "from elsewhere", "body": "x"}
    check_error(api.post("/api/threads", json=body, headers=evil), 403, "bad_origin")
    check_error(api.post(f"/api/threads/{tid}/posts", json={"body": "x"}, headers=evil), 403, "bad_origin")
    check_error(api.put(f"/api/posts/{qid}/vote", json={"value": 1}, headers=evil), 403, "bad_origin")
    check_error(forum["mod"].patch(f"/api/posts/{qid}", json={"body": "changed"}, headers=evil), 403, "bad_origin")
    check_error(forum["mod"].delete(f"/api/posts/{qid}", headers=evil), 403, "bad_origin")
    check_error(forum["mod"].patch(f"/api/threads/{tid}", json={"locked": True}, headers=evil), 403, "bad_origin")
    check_error(httpx.post(forum["url"] + "/api/users", json={"username": unique(), "password": PASSWORD},
                           headers=evil), 403, "bad_origin")
    check_error(api.delete("/api/session", headers=evil), 403, "bad_origin")
    assert api.get("/api/me").status_code == 200  # the session survived the refused sign-out
    page = forum["mod"].get(f"/api/threads/{tid}").json()
    assert page["responses"] == [] and page["question"]["score"] == 0 and page["question"]["revision"] == 1
    assert page["thread"]["locked"] is False


@pytest.mark.parametrize("origin", ["http://127.0.0.1:1", "null", "https://127.0.0.1:{port}"])
def test_near_miss_origins_are_refused(forum, origin):
    """An Origin differing from the server's in port or scheme, or `null`, is foreign."""
    api = Api(forum["url"]).sign_up()
    port = forum["url"].rsplit(":", 1)[1]
    r = api.post("/api/threads", json={"category": forum["category"], "title": "t", "body": "b"},
                 headers={"Origin": origin.format(port=port)})
    check_error(r, 403, "bad_origin")


def test_same_origin_and_no_origin_are_allowed(forum):
    """The server's own Origin is accepted, and so is a request without Origin (curl)."""
    api = Api(forum["url"]).sign_up()
    body = {"category": forum["category"], "title": "same origin", "body": "fine"}
    assert api.post("/api/threads", json=body, headers={"Origin": forum["url"]}).status_code == 201
    assert api.post("/api/threads", json=body).status_code == 201


def test_reads_ignore_origin(forum):
    """A GET with a foreign Origin is answered normally (reading changes nothing)."""
    r = httpx.get(forum["url"] + "/api/categories", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200 and "categories" in r.json()
