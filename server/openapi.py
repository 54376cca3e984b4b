"""The OpenAPI 3.1 description of the HTTP API (GET /api/openapi.json).

Request bodies are derived from the msgspec Structs the handlers decode into,
with the contract's limits laid over them; responses are written out here.
tests/security/test_sec_openapi.py checks that every route is described and
runs schemathesis against a live server to check the answers conform.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import msgspec

from .api import accounts, forum, preview
from .auth import COOKIE

JSON = "application/json"
BIGINT = 2**63 - 1
Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(required: list[str] | None = None, **props: Schema) -> Schema:
    return {"type": "object", "properties": props, "required": list(props) if required is None else required}


STR = {"type": "string"}
INT = {"type": "integer"}
ID = {"type": "integer", "minimum": 1, "maximum": BIGINT}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
ARRAY = lambda items: {"type": "array", "items": items}  # noqa: E731

# Limits from the contract, laid over the Structs' own schemas (which only know the types).
REQUEST_LIMITS: dict[str, dict[str, Schema]] = {
    "SignUp": {"username": {"pattern": "^[A-Za-z0-9_.-]{3,32}$", "minLength": 3, "maxLength": 32},
               "password": {"minLength": 8, "maxLength": 256}},
    "SignIn": {"password": {"maxLength": 4096}},
    "PasswordChange": {"new_password": {"minLength": 8, "maxLength": 256}},
    "NewCategory": {"slug": {"pattern": "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"},
                    "name": {"minLength": 1, "maxLength": 100}},
    "NewThread": {"title": {"minLength": 1, "maxLength": 200}, "body": {"minLength": 1, "maxLength": 20000}},
    "ThreadChange": {},
    "NewPost": {"body": {"minLength": 1, "maxLength": 20000}},
    "PostEdit": {"body": {"minLength": 1, "maxLength": 20000}},
    "Vote": {},
    "Preview": {"body": {"minLength": 1, "maxLength": 20000}},
}
REQUESTS = [accounts.SignUp, accounts.SignIn, accounts.PasswordChange, forum.NewCategory, forum.NewThread,
            forum.ThreadChange, forum.NewPost, forum.PostEdit, forum.Vote, preview.Preview]


def _request_schemas() -> dict[str, Schema]:
    _, components = msgspec.json.schema_components(REQUESTS, ref_template="#/components/schemas/{name}")
    for name, limits in REQUEST_LIMITS.items():
        props = components[name]["properties"]
        for prop, extra in limits.items():
            target = props[prop]
            if "anyOf" in target:  # an optional field: constrain the string branch
                target = next(s for s in target["anyOf"] if s.get("type") == "string")
            target.update(extra)
    return components


def _response_schemas() -> dict[str, Schema]:
    brief = obj(id=ID, username=STR, display_name=STR)
    path = ARRAY(obj(slug=STR, name=STR))
    post = obj(
        id=ID, thread_id=ID, parent_id=nullable(ID), kind={"enum": ["question", "response", "comment"]},
        author=ref("UserBrief"), body=STR, html=STR, created_at=TIME, edited_at=nullable(TIME),
        edited_by=nullable(ref("UserBrief")), revision={"type": "integer", "minimum": 1}, score=INT,
        my_vote={"enum": [-1, 0, 1]}, deleted=BOOL)
    return {
        "Error": obj(error=obj(["code", "message"], code={"type": "string", "pattern": "^[a-z0-9_]+$"},
                               message=STR, field=STR)),
        "UserBrief": brief,
        "User": obj(id=ID, username=STR, display_name=STR, is_moderator=BOOL, created_at=TIME),
        "UserAnswer": obj(user=ref("User")),
        "CategoryPath": path,
        "Category": obj(id=ID, slug=STR, name=STR, parent=nullable(STR), path=ref("CategoryPath"),
                        children=ARRAY(ref("Category"))),
        "CategoryBrief": obj(slug=STR, name=STR, path=ref("CategoryPath")),
        "Thread": obj(id=ID, title=STR, category=ref("CategoryBrief"), author=ref("UserBrief"), created_at=TIME,
                      response_count={"type": "integer", "minimum": 0}, last_activity_at=TIME, locked=BOOL,
                      seq={"type": "integer", "minimum": 0}),
        "Post": post,
        "Response": {"allOf": [ref("Post"), obj(comments=ARRAY(ref("Post")))]},
        "ThreadList": obj(threads=ARRAY(ref("Thread")), next=nullable(STR)),
        "ThreadPage": obj(thread=ref("Thread"), question=ref("Post"), responses=ARRAY(ref("Response")),
                          next=nullable(STR)),
        "Revision": obj(revision={"type": "integer", "minimum": 1}, body=STR, html=STR,
                        edited_by=ref("UserBrief"), edited_at=TIME),
        "Event": obj(["type", "thread", "seq", "name", "data"], type={"const": "event"}, thread=ID,
                     seq={"type": "integer", "minimum": 1},
                     name={"enum": ["post.created", "post.edited", "post.deleted", "vote.changed",
                                    "thread.updated"]},
                     data={"type": "object"}, created_at=TIME),
        "Presence": obj(users=ARRAY(ref("UserBrief")), guests={"type": "integer", "minimum": 0}),
    }


def _error(description: str, retry_after: bool = False) -> Schema:
    answer: Schema = {"description": description, "content": {JSON: {"schema": ref("Error")}}}
    if retry_after:
        answer["headers"] = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string",
                                                                                         "pattern": "^[0-9]+$"}}}
    return answer


ERRORS: dict[str, Schema] = {
    "400": _error("Malformed JSON, parameter or header"),
    "401": _error("Not signed in"),
    "403": _error("Not allowed (including an Origin the server does not allow)"),
    "404": _error("Unknown resource"),
    "409": _error("Conflict: name taken, stale revision, locked or deleted thread, idempotency key in flight"),
    "413": _error("Body over 64 KiB"),
    "415": _error("A state-changing request that is not application/json"),
    "422": _error("Failed validation; error.field names the field"),
    "429": _error("Rate limited", retry_after=True),
    "503": _error("A dependency (database) is down; retry later", retry_after=True),
}


def _ok(status: str, schema: Schema | None, description: str = "OK") -> Schema:
    if schema is None:
        return {status: {"description": description}}
    return {status: {"description": description, "content": {JSON: {"schema": schema}}}}


def _param(name: str, where: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


PATH_ID = _param("id", "path", ID, "The thread's or post's id")
PATH_SLUG = _param("slug", "path", STR, "A category slug")
LIMIT = lambda default, high: _param(  # noqa: E731
    "limit", "query", {"type": "integer", "minimum": 1, "maximum": high, "default": default}, "Page size")
BEFORE = _param("before", "query", STR, "The `next` cursor of the previous page")
AFTER = _param("after", "query", STR, "The `next` cursor of the previous page")
SORT = _param("sort", "query", {"enum": ["oldest", "newest", "top"], "default": "oldest"}, "Order of responses")
SINCE = _param("since", "query", {"type": "integer", "minimum": 0, "maximum": BIGINT, "default": 0},
               "Return the events with seq > since")
IDEMPOTENCY_KEY = _param("Idempotency-Key", "header", {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
                         "Sending the same key again returns the first request's post (200), never a second one")

SIGNED_IN: list[Schema] = [{"cookieAuth": []}]
OPTIONAL: list[Schema] = [{}, {"cookieAuth": []}]
NOBODY: list[Schema] = [{}]


def op(op_id: str, summary: str, ok: Schema, errors: list[str], *, body: str | None = None,
       params: list[Schema] | None = None, security: list[Schema] = NOBODY, tag: str = "forum") -> Schema:
    statuses = set(errors) | {"503"}
    if body is not None:
        statuses |= {"400", "413", "415", "422"}
    if security is SIGNED_IN:
        statuses |= {"401", "403"}
    operation: Schema = {"operationId": op_id, "summary": summary, "tags": [tag], "security": security,
                         "responses": {**ok, **{s: ERRORS[s] for s in sorted(statuses)}}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    if params:
        operation["parameters"] = params
    return operation


def _meta(op_id: str, summary: str, responses: Schema) -> Schema:
    return {"operationId": op_id, "summary": summary, "tags": ["meta"], "security": NOBODY, "responses": responses}


def _paths() -> dict[str, Schema]:
    thread_answer = obj(thread=ref("Thread"))
    post_answer = obj(post=ref("Post"))
    user_answer = _ok("200", ref("UserAnswer"))
    vote_answer = obj(post_id=ID, score=INT, my_vote={"enum": [-1, 0, 1]})
    by_id = [PATH_ID]
    return {
        "/api/users": {"post": op(
            "signUp", "Sign up (and sign in)", _ok("201", ref("UserAnswer"), "Created; signed in"),
            ["403", "409", "429"], body="SignUp", tag="accounts")},
        "/api/session": {
            "post": op("signIn", "Sign in", _ok("200", ref("UserAnswer"), "Signed in; a fresh session cookie"),
                       ["401", "403", "429"], body="SignIn", tag="accounts"),
            "delete": op("signOut", "Sign out: the session is revoked server-side", _ok("204", None, "Signed out"),
                         [], security=SIGNED_IN, tag="accounts"),
        },
        "/api/me": {"get": op("me", "Who am I", user_answer, ["401"], security=SIGNED_IN, tag="accounts")},
        "/api/me/password": {"put": op(
            "changePassword", "Change password: every other session is revoked, this one gets a fresh id",
            user_answer, ["429"], body="PasswordChange", security=SIGNED_IN, tag="accounts")},
        "/api/categories": {
            "get": op("listCategories", "The category tree", _ok("200", obj(categories=ARRAY(ref("Category")))),
                      []),
            "post": op("createCategory", "Create a category (moderator)",
                       _ok("201", obj(category=ref("Category")), "Created"), ["409"], body="NewCategory",
                       security=SIGNED_IN),
        },
        "/api/categories/{slug}/threads": {"get": op(
            "listCategoryThreads", "Threads of a category and its descendants, newest activity first",
            _ok("200", ref("ThreadList")), ["400", "404"], params=[PATH_SLUG, LIMIT(20, 100), BEFORE])},
        "/api/threads": {
            "get": op("listThreads", "Threads of every category, newest activity first",
                      _ok("200", ref("ThreadList")), ["400"], params=[LIMIT(20, 100), BEFORE]),
            "post": op("createThread", "Start a thread",
                       _ok("201", obj(thread=ref("Thread"), question=ref("Post")), "Created"), ["429"],
                       body="NewThread", security=SIGNED_IN),
        },
        "/api/threads/{id}": {
            "get": op("getThread", "A thread page: the question and a page of responses with their comments",
                      _ok("200", ref("ThreadPage")), ["400", "404"], params=[PATH_ID, LIMIT(50, 200), AFTER, SORT],
                      security=OPTIONAL),
            "patch": op("updateThread", "Rename (author or moderator), lock or move (moderator)",
                        _ok("200", thread_answer), ["404", "429"], body="ThreadChange", params=by_id,
                        security=SIGNED_IN),
        },
        "/api/threads/{id}/posts": {"post": op(
            "createPost", "Post a response, or a comment under a response (parent_id)",
            {**_ok("201", post_answer, "Created"), **_ok("200", post_answer, "Already made with this key")},
            ["404", "409", "429"], body="NewPost", params=[PATH_ID, IDEMPOTENCY_KEY], security=SIGNED_IN)},
        "/api/threads/{id}/events": {"get": op(
            "threadEvents", "Stored events after `since`, oldest first",
            _ok("200", obj(events=ARRAY(ref("Event")), seq=INT)), ["400", "404"],
            params=[PATH_ID, SINCE, LIMIT(100, 1000)])},
        "/api/threads/{id}/presence": {"get": op(
            "threadPresence", "Who is watching this thread", _ok("200", ref("Presence")), ["400", "404"],
            params=by_id)},
        "/api/posts/{id}": {
            "patch": op("editPost", "Edit a post (author or moderator); a stale revision is a 409",
                        _ok("200", post_answer), ["404", "409", "429"], body="PostEdit", params=by_id,
                        security=SIGNED_IN),
            "delete": op("deletePost", "Delete a post; deleting a question deletes its thread (moderator)",
                         _ok("204", None, "Deleted"), ["400", "404", "409", "429"], params=by_id,
                         security=SIGNED_IN),
        },
        "/api/posts/{id}/revisions": {"get": op(
            "postRevisions", "Every version of a post, oldest first",
            _ok("200", obj(revisions=ARRAY(ref("Revision")))), ["400", "404"], params=by_id)},
        "/api/posts/{id}/vote": {"put": op(
            "vote", "Vote on someone else's post", _ok("200", vote_answer), ["404", "409", "429"], body="Vote",
            params=by_id, security=SIGNED_IN)},
        "/api/presence": {"get": op("sitePresence", "Active Now, site-wide", _ok("200", ref("Presence")), [])},
        "/api/render": {"post": op(
            "renderPreview", "Render Markdown exactly as a post would be (the composers' preview)",
            _ok("200", obj(html=STR)), ["429"], body="Preview", security=SIGNED_IN)},
        "/api/openapi.json": {"get": _meta("openapi", "This document", _ok("200", {"type": "object"}))},
        "/healthz": {"get": _meta("healthz", "Liveness", _ok("200", obj(status={"const": "ok"})))},
        "/readyz": {"get": _meta("readyz", "Database and broker reachable", {
            **_ok("200", obj(status={"const": "ok"}, broker=STR)),
            **_ok("503", obj(status=STR, problems=ARRAY(STR)), "Not ready")})},
        "/metrics": {"get": _meta("metrics", "Prometheus metrics", {
            "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": STR}}}})},
    }


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parley", "version": "0.1.0",
                 "description": "A real-time Q&A discussion service. Live events are on the /ws websocket "
                                "(see docs/api.md). A state-changing request must be application/json and, "
                                "when it carries an Origin header, come from an allowed origin (else 403)."},
        "paths": _paths(),
        "components": {
            "schemas": {**_request_schemas(), **_response_schemas()},
            "securitySchemes": {"cookieAuth": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                                               "description": "The session cookie set by sign-up and sign-in"}},
        },
    }


def document() -> dict[str, Any]:
    return copy.deepcopy(_document())
