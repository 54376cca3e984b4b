"""What every endpoint does with bad requests: malformed JSON, wrong types, sizes, content types, ids, cursors."""

from __future__ import annotations

import pytest

from api_support import check_error, posted
from support import http
from support.api import Api, new_thread


@pytest.fixture(scope="module")
def setup(forum):
    """A signed-in user, a thread of the moderator's with one response."""
    api = Api(forum["url"]).sign_up()
    thread = new_thread(forum["mod"], forum["category"])
    resp = posted(forum["mod"], thread["thread"]["id"])
    return {"api": api, "thread": thread["thread"]["id"], "question": thread["question"]["id"],
            "response": resp["id"], **forum}


WRITES = [
    ("POST", "/api/threads"),
    ("POST", "/api/threads/{thread}/posts"),
    ("PATCH", "/api/threads/{thread}"),
    ("PATCH", "/api/posts/{response}"),
    ("PUT", "/api/posts/{response}/vote"),
    ("POST", "/api/categories"),
    ("POST", "/api/session"),
    ("POST", "/api/users"),
    ("PUT", "/api/me/password"),
]


@pytest.mark.parametrize("method, path", WRITES)
def test_malformed_json_is_400(setup, method, path):
    """A body that is not valid JSON → 400 bad_json."""
    r = setup["mod"].request(method, path.format(**setup), content=b'{"body": "unterminated',
                             headers={"content-type": "application/json"})
    check_error(r, 400, "bad_json")


@pytest.mark.parametrize("method, path", WRITES)
@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_non_json_content_type_is_415(setup, method, path, ctype):
    """A state-changing request whose Content-Type is not application/json → 415."""
    headers = {"content-type": ctype} if ctype else {}
    r = setup["mod"].request(method, path.format(**setup), content=b'{"body": "x"}', headers=headers)
    check_error(r, 415, "unsupported_media_type")


def test_json_content_type_with_charset_is_accepted(setup):
    """application/json; charset=utf-8 counts as JSON."""
    r = setup["api"].post(f"/api/threads/{setup['thread']}/posts", content=b'{"body": "charset ok"}',
                          headers={"content-type": "Application/JSON; charset=utf-8"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null"])
def test_non_object_json_is_422(setup, body):
    """A JSON body that is not an object → 422."""
    r = setup["api"].post(f"/api/threads/{setup['thread']}/posts", content=body,
                          headers={"content-type": "application/json"})
    check_error(r, 422, "invalid")


def test_body_over_64_kib_is_413(setup):
    """A request body over 64 KiB → 413, whether announced by Content-Length or streamed in chunks."""
    big = b'{"body": "' + b"x" * (65 * 1024) + b'"}'
    check_error(setup["api"].post(f"/api/threads/{setup['thread']}/posts", content=big,
                                  headers={"content-type": "application/json"}), 413, "too_large")

    def chunks():
        for _ in range(80):
            yield b"x" * 1024
    r = setup["api"].post(f"/api/threads/{setup['thread']}/posts", content=chunks(),
                          headers={"content-type": "application/json"})
    check_error(r, 413, "too_large")
    assert setup["api"].get("/api/me").status_code == 200  # the server is fine afterwards


def test_body_just_under_the_limit_is_read(setup):
    """A 64 KiB body is read (and then judged on its content: a 20,001-character body is 422, not 413)."""
    r = setup["api"].post(f"/api/threads/{setup['thread']}/posts", json={"body": "y" * 20_001})
    check_error(r, 422, "invalid", "body")
    r = setup["api"].post(f"/api/threads/{setup['thread']}/posts",
                          json={"body": "z" * 20_000, "pad": "p" * 40_000})
    assert r.status_code == 201, r.text
    assert len(r.json()["post"]["body"]) == 20_000


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/threads", {"category": "general", "title": 5, "body": "b"}),
    ("POST", "/api/threads", {"category": "general", "title": None, "body": "b"}),
    ("POST", "/api/threads/{thread}/posts", {"body": ["list"]}),
    ("POST", "/api/threads/{thread}/posts", {"body": "ok", "parent_id": "seven"}),
    ("POST", "/api/threads/{thread}/posts", {"body": "ok", "parent_id": 1.5}),
    ("PATCH", "/api/posts/{response}", {"body": "ok", "revision": "2"}),
    ("PUT", "/api/posts/{response}/vote", {"value": 2}),
    ("PUT", "/api/posts/{response}/vote", {"value": True}),
    ("PUT", "/api/posts/{response}/vote", {"value": "1"}),
    ("PATCH", "/api/threads/{thread}", {"locked": "yes"}),
])
def test_wrong_types_are_422_naming_the_field(setup, method, path, body):
    """A field of the wrong type → 422 with error.field naming it."""
    field = next(k for k, v in body.items() if k not in ("category",) and not (k == "body" and v in ("ok", "b")))
    client = setup["mod"] if method == "PATCH" else setup["api"]  # the moderator may patch anything
    check_error(client.request(method, path.format(**setup), json=body), 422, "invalid", field)


@pytest.mark.parametrize("method, path, body, field", [
    ("POST", "/api/threads", {"title": "t", "body": "b"}, "category"),
    ("POST", "/api/threads", {"category": "x", "body": "b"}, "title"),
    ("POST", "/api/threads", {"category": "x", "title": "t"}, "body"),
    ("POST", "/api/threads/{thread}/posts", {}, "body"),
    ("PATCH", "/api/posts/{response}", {"revision": 1}, "body"),
    ("PUT", "/api/posts/{response}/vote", {}, "value"),
])
def test_missing_fields_are_422_naming_the_field(setup, method, path, body, field):
    """A missing required field → 422 with error.field naming it."""
    check_error(setup["mod"].request(method, path.format(**setup), json=body), 422, "invalid", field)


@pytest.mark.parametrize("path", [
    "/api/threads/abc", "/api/threads/0", "/api/threads/-1", "/api/threads/1.5", "/api/threads/1e3",
    "/api/threads/99999999999999999999", "/api/threads/%20%31", "/api/threads/abc/events",
    "/api/threads/x/presence", "/api/posts/abc/revisions", "/api/threads/٣",
])
def test_non_integer_path_ids_are_400(setup, path):
    """A path id that is not a positive integer → 400 bad_parameter (GET)."""
    check_error(http.get(setup["url"] + path), 400, "bad_parameter", "id")


@pytest.mark.parametrize("method, path, body", [
    ("PATCH", "/api/posts/abc", {"body": "x"}),
    ("DELETE", "/api/posts/abc", None),
    ("PUT", "/api/posts/abc/vote", {"value": 1}),
    ("POST", "/api/threads/abc/posts", {"body": "x"}),
    ("PATCH", "/api/threads/abc", {"title": "x"}),
])
def test_non_integer_path_ids_on_writes_are_400(setup, method, path, body):
    """A write to a path id that is not an integer → 400 bad_parameter."""
    kw = {"json": body} if body is not None else {}
    check_error(setup["mod"].request(method, path, **kw), 400, "bad_parameter", "id")


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/threads/987654321", None),
    ("GET", "/api/threads/987654321/events", None),
    ("GET", "/api/posts/987654321/revisions", None),
    ("PATCH", "/api/threads/987654321", {"title": "x"}),
    ("POST", "/api/threads/987654321/posts", {"body": "x"}),
    ("PATCH", "/api/posts/987654321", {"body": "x"}),
    ("DELETE", "/api/posts/987654321", None),
    ("PUT", "/api/posts/987654321/vote", {"value": 1}),
    ("GET", "/api/categories/no-such-category-here/threads", None),
])
def test_unknown_ids_are_404(setup, method, path, body):
    """An id or slug that does not exist → 404 not_found."""
    kw = {"json": body} if body is not None else {}
    check_error(setup["mod"].request(method, path, **kw), 404, "not_found")


@pytest.mark.parametrize("path, field", [
    ("/api/threads?limit=abc", "limit"),
    ("/api/threads?limit=0", "limit"),
    ("/api/threads?limit=101", "limit"),
    ("/api/threads?limit=-5", "limit"),
    ("/api/threads?before=not+a+cursor", "before"),
    ("/api/categories/{category}/threads?before=%%%", "before"),
    ("/api/categories/{category}/threads?limit=1.5", "limit"),
    ("/api/threads/{thread}?limit=0", "limit"),
    ("/api/threads/{thread}?limit=201", "limit"),
    ("/api/threads/{thread}?sort=best", "sort"),
    ("/api/threads/{thread}?after=garbage!", "after"),
    ("/api/threads/{thread}/events?since=x", "since"),
    ("/api/threads/{thread}/events?since=-1", "since"),
    ("/api/threads/{thread}/events?limit=0", "limit"),
    ("/api/threads/{thread}/events?limit=1001", "limit"),
])
def test_bad_query_parameters_and_cursors_are_400(setup, path, field):
    """A bad limit, sort or since, or a string not shaped like a cursor → 400 naming the parameter."""
    check_error(http.get(setup["url"] + path.format(**setup)), 400, field=field)


@pytest.mark.parametrize("path, field", [
    ("/api/threads?before=not-a-cursor", "before"),
    ("/api/threads?before=W10", "before"),  # base64 of []
    ("/api/threads?before=WyJhIiwxXQ", "before"),  # ["a",1]
    ("/api/threads?before=Wzk5OTk5OTk5OTk5OTk5OTk5OTksMV0", "before"),  # a time out of range
    ("/api/threads/{thread}?after=garbage", "after"),
    ("/api/threads/{thread}?after=WzEsMl0", "after"),  # [1,2]: a `top` cursor used with `oldest`
    ("/api/threads/{thread}?sort=top&after=WzFd", "after"),  # [1]: an `oldest` cursor used with `top`
])
def test_cursor_shaped_strings_that_name_no_position_are_404(setup, path, field):
    """A cursor-shaped string the server did not make for this list and sort → 404 bad_cursor naming it."""
    check_error(http.get(setup["url"] + path.format(**setup)), 404, "bad_cursor", field)


def test_unknown_route_is_404_and_wrong_method_405_with_error_body(setup):
    """Unknown API paths → 404 and a wrong method → 405, both with the error body."""
    check_error(http.get(setup["url"] + "/api/nothing-here"), 404, "not_found")
    check_error(http.delete(setup["url"] + "/api/categories"), 405, "method_not_allowed")


def test_nul_characters_are_refused(setup):
    """A NUL character in a title or body → 422 (PostgreSQL text cannot hold it; never a 500)."""
    check_error(setup["api"].post(f"/api/threads/{setup['thread']}/posts", json={"body": "a\u0000b"}),
                422, "invalid", "body")
    check_error(setup["api"].post("/api/threads", json={"category": setup["category"], "title": "a\u0000",
                                                        "body": "b"}), 422, "invalid", "title")


def test_bad_idempotency_key_is_400(setup):
    """An Idempotency-Key that is too long or not visible ASCII → 400."""
    r = setup["api"].post(f"/api/threads/{setup['thread']}/posts", json={"body": "k"},
                          headers={"Idempotency-Key": "k" * 201})
    check_error(r, 400)
    r = setup["api"].post(f"/api/threads/{setup['thread']}/posts", json={"body": "k"},
                          headers={"Idempotency-Key": "has space"})
    check_error(r, 400)


def test_responses_carry_security_headers(setup):
    """API answers carry nosniff and a CSP; JSON is labelled application/json."""
    r = http.get(setup["url"] + "/api/categories")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" in r.headers
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("method, path, body, field", [
    ("POST", "/api/threads", {"category": "x\u0000", "title": "t", "body": "b"}, "category"),
    ("POST", "/api/session", {"username": "\u0000", "password": "12345678"}, "username"),
    ("POST", "/api/users", {"username": "abcdef", "password": "1234\u00005678"}, "password"),
    ("POST", "/api/categories", {"slug": "ok-slug", "name": "n", "parent": "\u0000"}, "parent"),
    ("PATCH", "/api/threads/{thread}", {"category": "\u0000"}, "category"),
])
def test_nul_in_any_string_field_is_422_not_500(setup, method, path, body, field):
    """A NUL character in any string field that reaches a query → 422 naming it (it was a 500)."""
    check_error(setup["mod"].request(method, path.format(**setup), json=body), 422, "invalid", field)


def test_invalid_utf8_body_is_400(setup):
    """A body that is not UTF-8 → 400 bad_json (it was a 500)."""
    r = setup["api"].post(f"/api/threads/{setup['thread']}/posts", content=b'{"body": "\xff\xfe"}',
                          headers={"content-type": "application/json"})
    check_error(r, 400, "bad_json")


@pytest.mark.parametrize("score", [2**40, -(2**40)])
def test_top_cursor_with_score_outside_int32_is_not_a_500(setup, score):
    """A `top` cursor whose score does not fit a 32-bit integer is answered (it was a 500)."""
    import base64
    import json
    cursor = base64.urlsafe_b64encode(json.dumps([1, score]).encode()).decode().rstrip("=")
    r = http.get(f"{setup['url']}/api/threads/{setup['thread']}?sort=top&after={cursor}")
    assert r.status_code == 200, r.text
    ids = [p["id"] for p in r.json()["responses"]]
    # Everything scores below 2**40 and nothing below -2**40.
    assert (setup["response"] in ids) if score > 0 else ids == []
