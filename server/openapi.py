"""The OpenAPI 3.1 description of the HTTP API (GET /api/openapi.json).

Request bodies are derived from the msgspec Structs the handlers decode into,
with the contract's limits laid over them; the answers' shapes from the Structs
of server/shapes.py. What is written here is what no Struct says: the paths,
their parameters, and which errors each can answer.
tests/security/test_sec_openapi.py checks that every route is described and
runs schemathesis against a live server to check the answers conform.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import msgspec

from . import fields, privileges, shapes
from .api import (
    accounts,
    apikeys,
    drafts,
    following,
    forum,
    inputs,
    leaving,
    mail,
    mentions,
    moderation,
    notifications,
    preview,
    profiles,
    search,
    tags,
    uploads,
    webhooks,
)
from .auth import COOKIE
from .live.ws import FEED
from .store.cursor import CURSOR

JSON = "application/json"
BIGINT = fields.ID_MAX
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

REQUESTS = [accounts.SignUp, accounts.SignIn, accounts.PasswordChange, forum.NewCategory, forum.NewThread,
            forum.ThreadChange, forum.NewPost, forum.PostEdit, forum.Vote, forum.Accepted, moderation.NewFlag,
            moderation.FlagChange, moderation.Suspension, moderation.Silence, preview.Preview, notifications.MarkRead,
            following.Following, following.ReadPosition, mail.EmailChange, mail.VerifyEmail, mail.ResetRequest,
            mail.ResetConfirm, mail.PreferencesChange, forum.Duplicate, tags.TagFollowing, tags.BookmarkChange,
            uploads.AvatarChange, apikeys.NewApiKey, drafts.DraftChange, leaving.AccountDeletion,
            webhooks.NewWebhook, forum.Approval, forum.Ignored]


def _no_nul(schema: Any) -> None:
    """parse() refuses NUL in every string of a body: say so on each string that has no pattern of its own."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not {"pattern", "enum", "const", "format", "allOf"} & set(schema):
            schema["pattern"] = fields.NO_NUL
        for value in schema.values():
            _no_nul(value)
    elif isinstance(schema, list):
        for value in schema:
            _no_nul(value)


def _text_schema(rule: fields.Text) -> Schema:
    """A Text rule as JSON Schema: the trimmed length (a pattern) and "shows something" (the Shows component)."""
    assert rule.low == 1, "trimmed_pattern() states a minimum of one character"
    text: Schema = {"type": "string", "allOf": [{"pattern": fields.trimmed_pattern(rule.high, True)}, ref("Shows")],
            "description": f"{rule.low}–{rule.high} characters after trimming, not only invisible ones"}
    if rule.refuse:
        text["allOf"].append({"pattern": fields.refused_pattern(rule.refuse)})
        text["description"] += f", without {fields.REFUSED_WHAT[rule.refuse]}"
    if not rule.blank_is_none:
        return text
    blank = {"type": "string", "pattern": fields.blank_pattern(),
             "description": "blank: the same as absent"}
    return {"anyOf": [text, blank]}


def _request_schemas() -> dict[str, Schema]:
    """The request bodies, from the Structs the handlers decode into: their msgspec.Meta limits come through
    msgspec's own schema, and each Text rule (trimmed length, not blank, not only invisible) is laid over."""
    _, components = msgspec.json.schema_components(REQUESTS, ref_template="#/components/schemas/{name}")
    for model in REQUESTS:
        props = components[model.__name__]["properties"]
        for name, rule in fields.text_rules(model):
            target = props[name]
            if "anyOf" in target:  # `X | None`: replace the string branch
                target["anyOf"] = [_text_schema(rule) if s.get("type") == "string" else s for s in target["anyOf"]]
            else:
                props[name] = _text_schema(rule)
    _no_nul(components)
    components["Shows"] = {"type": "string", "pattern": fields.visible_pattern(),
                           "description": "Holds at least one character that shows (not only zero-width, "
                                          "blank or combining characters)"}
    return components


def _response_schemas() -> dict[str, Schema]:
    """The answers' shapes, derived from their Structs (server/shapes.py), where each is declared once."""
    _, components = msgspec.json.schema_components(shapes.ANSWERS, ref_template="#/components/schemas/{name}")
    return components


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
DRAFT_KEY = _param("key", "path", {"type": "string", "pattern": fields.whole(drafts.KEY)},
                   "ask, thread:ID (a response), comment:ID (under a response) or edit:ID (a post's edit); "
                   "another: 422")
PATH_SLUG = _param("slug", "path", STR, "A category slug")
def LIMIT(size: inputs.PageSize) -> Schema:  # noqa: N802
    return _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": size.high, "default": size.default},
                  "Page size")
CURSOR_SCHEMA = {"type": "string", "pattern": f"^(?:{CURSOR.pattern}){fields.END}|^{fields.END}"}
BEFORE = _param("before", "query", CURSOR_SCHEMA, "The `next` cursor of the previous page (empty: the first page). "
                "Not shaped like a cursor: 400; not one of this list and sort: 404 (both `bad_cursor`)")
AFTER = _param("after", "query", CURSOR_SCHEMA, BEFORE["description"])
REV_AFTER = _param("after", "query", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1, "default": 0},
                   "Revisions after this one (the `next` of the previous answer)")
SORT = _param("sort", "query", {"enum": ["oldest", "newest", "top"], "default": "oldest"},
              "Order of responses; with `top` the accepted response comes first")
LIST_SORT = _param("sort", "query", {"enum": ["activity", "newest", "top"], "default": "activity"},
                   "Newest activity, newest threads, or the question's score")
LIST_TAG = _param("tag", "query", {"type": "string", "pattern": f"^(?:{tags.TAG.pattern}){fields.END}|^{fields.END}"},
                  "Only the threads carrying this tag (capitals folded; an unknown tag: none; empty: any)")
LIST_FILTER = _param("filter", "query", {"enum": ["unanswered", "following", "unread"]},
                     "unanswered: no non-deleted response; following / unread (signed in): threads I follow / "
                     "with responses or comments by others after my read position")
PATH_USERNAME = _param("username", "path", {"type": "string", "minLength": 1}, "A username (any case)")


def _search_params() -> list[Schema]:
    """Search's parameters: a function, not a constant, because the trimmed patterns scan all of Unicode
    (~80 ms), which importing this module (every `parley serve` start) should not pay."""
    return [
        _param("q", "query", {"type": "string", "pattern": fields.trimmed_pattern(search.Q_MAX, True)},
               f'1–{search.Q_MAX} characters after trimming, in web-search syntax: words, "a phrase", -word, or',
               required=True),
        _param("category", "query", {"type": "string", "pattern": fields.trimmed_pattern(search.CATEGORY_MAX, False)},
               "A category slug; its descendants are included (blank: every category)"),
        _param("author", "query", {"type": "string", "pattern": fields.trimmed_pattern(search.AUTHOR_MAX, False)},
               "A username (blank: anyone)"),
        _param("sort", "query", {"enum": ["relevance", "newest"], "default": "relevance"}, "Order of results"),
    ]


SINCE = _param("since", "query", {"type": "integer", "minimum": 0, "maximum": BIGINT, "default": 0},
               "Return the events with seq > since")
IDEMPOTENCY_KEY = _param("Idempotency-Key", "header",
                         {"type": "string", "pattern": fields.whole(forum.IDEMPOTENCY_KEY)},
                         "Sending the same key again returns the first request's post (200), never a second one")

SIGNED_IN: list[Schema] = [{"cookieAuth": []}, {"bearerAuth": []}]
OPTIONAL: list[Schema] = [{}, {"cookieAuth": []}, {"bearerAuth": []}]
SESSION: list[Schema] = [{"cookieAuth": []}]  # not with an API key (managing the keys)
NOBODY: list[Schema] = [{}]


def op(op_id: str, summary: str, ok: Schema, errors: list[str], *, body: str | None = None,
       params: list[Schema] | None = None, security: list[Schema] = NOBODY, tag: str = "forum") -> Schema:
    statuses = set(errors) | {"503"}
    if any(p is BEFORE or p is AFTER for p in params or ()):
        statuses |= {"400", "404"}  # a malformed cursor, a cursor of another list or sort
    if any(p["in"] == "query" for p in params or ()):
        statuses.add("400")  # a bad value, or a parameter given twice
    if any(p["in"] == "path" for p in params or ()):
        statuses |= {"400", "404"} if any(p is PATH_ID for p in params or ()) else {"404"}
    if body is not None:
        statuses |= {"400", "413", "415", "422"}
    if security is SIGNED_IN or security is SESSION:
        statuses |= {"401", "403"}
    responses = {s: ERRORS[s] for s in sorted(statuses)}
    if op_id in privileges.GUARDED:  # the one guard's table: the handlers check the same (server/privileges.py)
        _, when = privileges.GUARDED[op_id]
        responses["403"] = _error(f"Not allowed; code `privilege` when the user lacks the privilege it needs: {when} "
                                  "(thresholds: GET /api/privileges)")
    operation: Schema = {"operationId": op_id, "summary": summary, "tags": [tag], "security": security,
                         "responses": {**ok, **responses}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    if params:
        operation["parameters"] = params
    return operation


def _redirect(op_id: str, summary: str, status: str, params: list[Schema], errors: list[str]) -> Schema:
    """A browser redirect of the single sign-on dance: the answer is a Location, errors are the usual body."""
    return {"operationId": op_id, "summary": summary, "tags": ["sso"], "security": NOBODY, "parameters": params,
            "responses": {status: {"description": "Redirect", "headers": {"Location": {"schema": STR}}},
                          **{s: ERRORS[s] for s in sorted({*errors, "400", "503"})}}}


def _unsubscribe() -> Schema:
    """The one-click unsubscribe of a mail's List-Unsubscribe URL (RFC 8058): a form, no session, no Origin check."""
    form = {"type": "object", "properties": {"List-Unsubscribe": {"const": "One-Click"}},
            "required": ["List-Unsubscribe"]}
    return {
        "operationId": "unsubscribe", "tags": ["email"], "security": NOBODY,
        "summary": "One-click unsubscribe (RFC 8058): the token of a mail's List-Unsubscribe URL, once; notification "
                   "mail to never (or, from a digest, the digest off). A GET of the same URL is a page that changes "
                   "nothing",
        "parameters": [_param("token", "query", {"type": "string", "minLength": 1, "maxLength": 200},
                              "The token of the mail's link", required=True)],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": form},
                                                      "multipart/form-data": {"schema": form}}},
        "responses": {**_ok("200", ref("Unsubscribed")), **{s: ERRORS[s] for s in ("400", "413", "415", "422", "429",
                                                                                      "503")}},
    }


def _upload() -> Schema:
    """POST /api/uploads: a multipart form (not JSON) with one image in the field `file`."""
    form = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}
    errors = {s: ERRORS[s] for s in ("400", "401", "403", "415", "422", "429", "503")}
    errors["413"] = _error("The file is over PARLEY_UPLOAD_MAX_BYTES (default 8 MiB)")
    errors["422"] = _error("Not a PNG, JPEG, GIF or WebP image, damaged, over 40 megapixels or with bytes after "
                           "its end (field file)")
    errors["429"] = _error("Rate limited, or past the day's quota (50 uploads, 100 MiB)", retry_after=True)
    return {
        "operationId": "createUpload", "tags": ["pictures"], "security": SIGNED_IN,
        "summary": "Upload an image: verified by its bytes, re-encoded without metadata, kept once by its SHA-256",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}},
        "responses": {**_ok("201", ref("UploadAnswer"), "Created"),
                      **_ok("200", ref("UploadAnswer"), "The same bytes again: the upload I already have"),
                      **errors},
    }


def _serve_upload() -> Schema:
    image = {"schema": {"type": "string", "format": "binary"}}
    return {
        "operationId": "getUpload", "tags": ["pictures"], "security": NOBODY,
        "summary": "An uploaded image or thumbnail, with its true type, nosniff and a year's immutable caching",
        "parameters": [_param("name", "path", {"type": "string"}, "SHA-256.EXT, as in an upload's url")],
        "responses": {
            "200": {"description": "The bytes", "content": {t: image for t in (
                "image/png", "image/jpeg", "image/gif", "image/webp")}},
            "304": {"description": "Not modified (If-None-Match)"},
            "404": ERRORS["404"]},
    }


def _meta(op_id: str, summary: str, responses: Schema) -> Schema:
    return {"operationId": op_id, "summary": summary, "tags": ["meta"], "security": NOBODY, "responses": responses}


def _paths() -> dict[str, Schema]:
    thread_answer = obj(thread=ref("Thread"))
    post_answer = obj(post=ref("Post"))
    user_answer = _ok("200", ref("UserAnswer"))
    vote_answer = obj(post_id=ID, score=INT, my_vote={"enum": [-1, 0, 1]})
    by_id = [PATH_ID]
    return {
        "/api/users": {
            "post": op("signUp", "Sign up (and sign in)", _ok("201", ref("UserAnswer"), "Created; signed in"),
                       ["403", "409", "429"], body="SignUp", tag="accounts"),
            "get": op("searchUsers", "Users whose username or display name starts with q (any case), for @mentions",
                      _ok("200", obj(users=ARRAY(ref("UserBrief")))), ["400"],
                      params=[_param("q", "query", {"type": "string", "minLength": 1, "maxLength": 32},
                                     "The prefix", required=True), LIMIT(mentions.USERS)], tag="accounts"),
        },
        "/api/notifications": {"get": op(
            "listNotifications", "My notifications, newest first, with my unread count",
            _ok("200", obj(notifications=ARRAY(ref("Notification")), unread={"type": "integer", "minimum": 0},
                           next=nullable(STR))), ["400"], params=[LIMIT(notifications.NOTIFICATIONS), BEFORE],
            security=SIGNED_IN, tag="notifications")},
        "/api/notifications/read": {"post": op(
            "readNotifications", "Mark some ({ids}) or all ({all: true}) of my notifications read",
            _ok("200", ref("Unread")), ["429"], body="MarkRead", security=SIGNED_IN, tag="notifications")},
        "/api/threads/{id}/following": {"put": op(
            "setFollowing", "Follow or unfollow a thread (authors and posters follow unless they unfollow)",
            _ok("200", obj(following=BOOL)), ["400", "404", "429"], body="Following", params=[PATH_ID],
            security=SIGNED_IN, tag="notifications")},
        "/api/threads/{id}/read": {"put": op(
            "setReadPosition", "My read position in a thread (a seq); it never moves backwards",
            _ok("204", None, "Recorded"), ["400", "404", "429"], body="ReadPosition", params=[PATH_ID],
            security=SIGNED_IN, tag="notifications")},
        "/api/session": {
            "post": op("signIn", "Sign in", _ok("200", ref("UserAnswer"), "Signed in; a fresh session cookie"),
                       ["401", "403", "429"], body="SignIn", tag="accounts"),
            "delete": op("signOut", "Sign out: the session is revoked server-side", _ok("204", None, "Signed out"),
                         [], security=SIGNED_IN, tag="accounts"),
        },
        "/api/me": {
            "get": op("me", "Who am I", user_answer, ["401"], security=SIGNED_IN, tag="accounts"),
            "delete": op("deleteMe", "Delete my account: every session ends (sockets close with 4001), the username is "
                         "freed, my posts stay under deleted-user-N (their text too unless erase_posts). "
                         "403 wrong_password", _ok("204", None, "Deleted"), ["429"], body="AccountDeletion",
                         security=SESSION, tag="accounts"),
        },
        "/api/me/export": {"get": op(
            "exportMe", "Everything I wrote and set, as one JSON document (a download)", _ok("200", ref("Export")),
            ["429"], security=SIGNED_IN, tag="accounts")},
        "/api/me/api-keys": {
            "get": op("listApiKeys", "My API keys, newest first (never their tokens)", _ok("200", ref("ApiKeys")), [],
                      security=SESSION, tag="accounts"),
            "post": op("createApiKey", "Make an API key; its token is in this answer only",
                       _ok("201", ref("ApiKeyCreated"), "Created"), ["409", "429"], body="NewApiKey",
                       security=SESSION, tag="accounts"),
        },
        "/api/me/api-keys/{id}": {"delete": op(
            "deleteApiKey", "Delete an API key: it stops working at once and its sockets close (4001)",
            _ok("204", None, "Deleted"), ["429"], params=[PATH_ID], security=SESSION, tag="accounts")},
        "/api/me/drafts": {"get": op(
            "listDrafts", "My drafts, the most recently changed first", _ok("200", ref("Drafts")), [],
            security=SIGNED_IN, tag="accounts")},
        "/api/me/drafts/{key}": {
            "put": op("putDraft", "Save a draft; with `revision`, only if it is the current one (0: only if there is "
                      "none), else 409 `draft_changed` whose body adds `draft`, the current one (DraftConflict; null "
                      "when there is none); 409 `too_many_drafts` past 200 keys. Every socket of mine hears each "
                      "change as a `draft` frame",
                      _ok("200", ref("DraftAnswer")), ["409", "429"], body="DraftChange", params=[DRAFT_KEY],
                      security=SIGNED_IN, tag="accounts"),
            "delete": op("deleteDraft", "Discard a draft (none: 204 all the same); my sockets hear `body: null`",
                         _ok("204", None, "Deleted"), ["422", "429"], params=[DRAFT_KEY], security=SIGNED_IN,
                         tag="accounts"),
        },
        "/api/webhooks": {
            "post": op("createWebhook", "Make a webhook (moderators): signed deliveries of the events named; its "
                       "secret is in this answer only. A URL on a loopback, private or link-local address is 422 "
                       "field url",
                       _ok("201", ref("WebhookCreated"), "Created"), ["409", "429"], body="NewWebhook",
                       security=SIGNED_IN, tag="webhooks"),
            "get": op("listWebhooks", "The webhooks (moderators), newest first, never their secrets",
                      _ok("200", ref("Webhooks")), [], security=SIGNED_IN, tag="webhooks"),
        },
        "/api/webhooks/{id}": {"delete": op(
            "deleteWebhook", "Delete a webhook and its delivery log (moderators)", _ok("204", None, "Deleted"),
            ["429"], params=[PATH_ID], security=SIGNED_IN, tag="webhooks")},
        "/api/webhooks/{id}/deliveries": {"get": op(
            "listWebhookDeliveries", "A webhook's deliveries, newest first (moderators)",
            _ok("200", ref("WebhookDeliveries")), [], params=[PATH_ID, LIMIT(webhooks.DELIVERIES), BEFORE],
            security=SIGNED_IN, tag="webhooks")},
        "/auth/oidc/config": {"get": op(
            "ssoConfig", "Single sign-on: the provider's name for a 'Sign in with …' button (null: not set up)",
            _ok("200", ref("SsoConfig")), [], tag="sso")},
        "/auth/oidc/login": {"get": _redirect(
            "ssoLogin", "Single sign-on: a redirect to the provider (authorization code, PKCE S256, state, nonce)",
            "302", [_param("next", "query", STR, "A path on this site to go to afterwards")], ["403", "404"])},
        "/auth/oidc/callback": {"get": _redirect(
            "ssoCallback", "Single sign-on: the provider sends the person back here; signed in, 303 to `next`. A "
            "wrong state or nonce, an expired or foreign ID token: 403 oidc_failed, nothing made",
            "303", [_param("code", "query", STR, "The provider's code"),
                    _param("state", "query", STR, "The state of the login")], ["403", "404", "409", "429"])},
        "/api/me/password": {"put": op(
            "changePassword", "Change password: every earlier session ends, this one too (their sockets close with "
            "4001); the answer sets a new session cookie",
            user_answer, ["429"], body="PasswordChange", security=SIGNED_IN, tag="accounts")},
        "/api/me/email": {"put": op(
            "setEmail", "Set my e-mail address (unverified; a verification mail goes to it), or remove it with null. "
            "409 email_taken: another account has verified it; 403 wrong_password",
            user_answer, ["409", "429"], body="EmailChange", security=SIGNED_IN, tag="email")},
        "/api/me/avatar": {"put": op(
            "setAvatar", "Set my avatar to a square crop of one of my uploads (null: none; initials are shown)",
            user_answer, ["404", "429"], body="AvatarChange", security=SIGNED_IN, tag="pictures")},
        "/api/uploads": {"post": _upload()},
        "/uploads/{name}": {"get": _serve_upload()},
        "/api/me/preferences": {
            "get": op("getPreferences", "My mail preferences", _ok("200", ref("PreferencesAnswer")), [],
                      security=SIGNED_IN, tag="email"),
            "put": op("setPreferences", "Change my mail preferences (any subset)", _ok("200", ref("PreferencesAnswer")),
                      ["429"], body="PreferencesChange", security=SIGNED_IN, tag="email"),
        },
        "/api/email/verify": {"post": op(
            "verifyEmail", "Verify an address with the token of its mail (no session needed); a used, expired or "
            "unknown token is 422 field token", user_answer, ["403", "409", "429"], body="VerifyEmail", tag="email")},
        "/api/password-reset": {"post": op(
            "requestPasswordReset", "Mail a reset link to this address if it is an account's verified one; the answer "
            "is the same either way", _ok("202", ref("Queued"), "Accepted (whether or not the address is known)"),
            ["403", "429"], body="ResetRequest", tag="email")},
        "/api/password-reset/confirm": {"post": op(
            "confirmPasswordReset", "Set a new password with a reset token (once, within an hour) and sign in; every "
            "earlier session ends. A used, expired or unknown token is 422 field token",
            _ok("200", ref("UserAnswer"), "Signed in; a fresh session cookie"), ["401", "403", "429"],
            body="ResetConfirm", tag="email")},
        "/unsubscribe": {"post": _unsubscribe(), "get": {
            "operationId": "unsubscribePage", "tags": ["email"], "security": NOBODY,
            "summary": "The page of a mail's unsubscribe URL: a button that sends the POST; it changes nothing",
            "parameters": [_param("token", "query", {"type": "string"}, "The token of the mail's link")],
            "responses": {"200": {"description": "The page (HTML)", "content": {"text/html": {"schema": STR}}}}}},
        "/api/categories": {
            "get": op("listCategories", "The category tree", _ok("200", obj(categories=ARRAY(ref("Category")))),
                      []),
            "post": op("createCategory", "Create a category (moderator); an unknown parent is 404",
                       _ok("201", obj(category=ref("Category")), "Created"), ["404", "409", "429"], body="NewCategory",
                       security=SIGNED_IN),
        },
        "/api/categories/{slug}/threads": {"get": op(
            "listCategoryThreads", "Threads of a category and its descendants, newest activity first",
            _ok("200", ref("ThreadList")), ["400", "401", "404"],
            params=[PATH_SLUG, LIMIT(forum.THREAD_LIST), BEFORE, LIST_SORT, LIST_FILTER, LIST_TAG], security=OPTIONAL)},
        "/api/threads": {
            "get": op("listThreads", "Threads of every category, newest activity first",
                      _ok("200", ref("ThreadList")), ["400", "401"],
                      params=[LIMIT(forum.THREAD_LIST), BEFORE, LIST_SORT, LIST_FILTER, LIST_TAG], security=OPTIONAL),
            "post": op("createThread", "Start a thread, with 0–5 tags (a tag never used before needs the create_tag "
                       "privilege: else 403 code privilege); the followers of its tags are notified (kind tagged)",
                       _ok("201", obj(thread=ref("Thread"), question=ref("Post")), "Created"), ["404", "429"],
                       body="NewThread", security=SIGNED_IN),
        },
        "/api/threads/similar": {"get": op(
            "similarThreads", "At most 5 threads like the question being asked (its title and the start of its body), "
            "those with an accepted answer first", _ok("200", ref("SimilarThreads")), ["400", "429"],
            params=[_param("title", "query", {"type": "string", "minLength": 1}, "The title typed so far (its first "
                           f"{tags.TITLE_MAX} characters count; blank: 400)", required=True),
                    _param("body", "query", STR, "The body typed so far (its start counts)")])},
        "/api/threads/{id}/duplicate": {"put": op(
            "setDuplicate", "Mark a thread a duplicate of another, or lift it with null (moderator): it then takes no "
            "new responses (409 thread_duplicate)", _ok("200", thread_answer), ["404", "429"], body="Duplicate",
            params=by_id, security=SIGNED_IN, tag="moderation")},
        "/api/tags": {"get": op(
            "listTags", "Tags in use with their count of threads, most used first; q: those starting with it",
            _ok("200", ref("TagList")), ["400"],
            params=[_param("q", "query", STR, "A prefix (any case)"), LIMIT(tags.TAG_LIST)], tag="tags")},
        "/api/tags/{name}/following": {"put": op(
            "setTagFollowing", "Follow or unfollow a tag: a new question carrying it notifies me (kind tagged)",
            _ok("200", obj(following=BOOL)), ["400", "404", "429"], body="TagFollowing",
            params=[_param("name", "path", {"type": "string", "pattern": fields.whole(tags.TAG)}, "A tag name")],
            security=SIGNED_IN, tag="tags")},
        "/api/posts/{id}/bookmark": {"put": op(
            "setBookmark", "Bookmark a post or take the bookmark off", _ok("200", obj(bookmarked=BOOL)),
            ["404", "429"], body="BookmarkChange", params=by_id, security=SIGNED_IN, tag="tags")},
        "/api/me/bookmarks": {"get": op(
            "listBookmarks", "My bookmarked posts, newest bookmark first, each with its thread",
            _ok("200", ref("Bookmarks")), ["400"], params=[LIMIT(tags.BOOKMARKS), BEFORE], security=SIGNED_IN,
            tag="tags")},
        "/api/threads/{id}": {
            "get": op("getThread", "A thread page: the question and a page of responses with their comments",
                      {**_ok("200", ref("ThreadPage")),
                       **_ok("304", None, "A guest's If-None-Match names the current page: not modified")},
                      ["400", "404"],
                      params=[PATH_ID, LIMIT(forum.THREAD_PAGE), AFTER, SORT,
                              _param("If-None-Match", "header", {"type": "string"},
                                     "The ETag of a guest's earlier answer (W/\"t{id}s{seq}\")")],
                      security=OPTIONAL),
            "patch": op("updateThread", "Rename or retag (author or moderator), lock or move (moderator)",
                        _ok("200", thread_answer), ["404", "429"], body="ThreadChange", params=by_id,
                        security=SIGNED_IN),
        },
        "/api/threads/{id}/accepted": {"put": op(
            "setAccepted", "Accept a response (the asker or a moderator), or withdraw with null",
            _ok("200", thread_answer), ["404", "409", "429"], body="Accepted", params=by_id, security=SIGNED_IN)},
        "/api/users/{username}": {"get": op(
            "profile", "A user's profile with stats", _ok("200", obj(user=ref("Profile"))), ["404"],
            params=[PATH_USERNAME], tag="profiles")},
        "/api/users/{username}/reputation": {"get": op(
            "reputationLedger", "A user's reputation ledger, newest first: each change that happened, its reason and "
            "post", _ok("200", ref("ReputationLedger")), ["400", "404"],
            params=[PATH_USERNAME, LIMIT(profiles.REPUTATION), BEFORE], tag="profiles")},
        "/api/privileges": {"get": op(
            "privileges", "Each privilege and the reputation it needs under this server's preset (null: moderators "
            "only)", _ok("200", ref("Privileges")), [], tag="profiles")},
        "/api/users/{username}/posts": {"get": op(
            "userPosts", "A user's non-deleted posts, newest first, each with its thread",
            _ok("200", ref("UserPosts")), ["400", "404"], params=[PATH_USERNAME, LIMIT(profiles.USER_POSTS), BEFORE],
            security=OPTIONAL, tag="profiles")},
        "/api/search": {"get": op(
            "search", "Full-text search over titles and posts (422 field q: too many words, or too costly to answer"
            " within the time budget)", _ok("200", ref("SearchResults")), ["400", "422", "429"],
            params=[*_search_params(), LIMIT(search.RESULTS), BEFORE], security=OPTIONAL, tag="search")},
        "/api/threads/{id}/posts": {"post": op(
            "createPost", "Post a response, or a comment under a response (parent_id)",
            {**_ok("201", post_answer, "Created"), **_ok("200", post_answer, "Already made with this key")},
            ["404", "409", "429"], body="NewPost", params=[PATH_ID, IDEMPOTENCY_KEY], security=SIGNED_IN)},
        "/api/threads/{id}/events": {"get": op(
            "threadEvents", "Stored events after `since`, oldest first",
            _ok("200", obj(events=ARRAY(ref("Event")), seq=INT)), ["400", "404"],
            params=[PATH_ID, SINCE, LIMIT(forum.EVENTS)])},
        "/api/threads/{id}/presence": {"get": op(
            "threadPresence", "Who is watching this thread, by display name", _ok("200", ref("Presence")),
            ["400", "404"], params=[*by_id, LIMIT(forum.PRESENCE), AFTER])},
        "/api/posts/{id}": {
            "get": op("permalink", "One post with its thread; `after` opens the thread page at it",
                      _ok("200", ref("Permalink")), ["400", "404"], params=by_id, security=OPTIONAL),
            "patch": op("editPost", "Edit a post (author or moderator); a stale revision is a 409",
                        _ok("200", post_answer), ["404", "409", "429"], body="PostEdit", params=by_id,
                        security=SIGNED_IN),
            "delete": op("deletePost", "Delete a post; deleting a question deletes its thread (moderator)",
                         _ok("204", None, "Deleted"), ["400", "404", "409", "429"], params=by_id,
                         security=SIGNED_IN),
        },
        "/api/posts/{id}/revisions": {"get": op(
            "postRevisions", "Every version of a post, oldest first, about 1 MiB per answer (`next`: pass as `after`)",
            _ok("200", obj(["revisions"], revisions=ARRAY(ref("Revision")), next={"type": "integer", "minimum": 1})),
            ["400", "404"], params=[*by_id, REV_AFTER])},
        "/api/posts/{id}/vote": {"put": op(
            "vote", "Vote on someone else's post", _ok("200", vote_answer), ["404", "409", "429"], body="Vote",
            params=by_id, security=SIGNED_IN)},
        "/api/pending": {"get": op(
            "pendingPosts", "The posts the spam check holds, newest first, each with its thread (moderator)",
            _ok("200", ref("UserPosts")), ["400"], params=[LIMIT(profiles.USER_POSTS), BEFORE], security=SIGNED_IN,
            tag="moderation")},
        "/api/posts/{id}/approval": {"put": op(
            "approvePost", "Publish a post the spam check held (live, with its notifications then), or delete it "
            "(moderator); a post that is not pending → 409 not_pending", _ok("200", post_answer), ["404", "409", "429"],
            body="Approval", params=by_id, security=SIGNED_IN, tag="moderation")},
        "/api/posts/{id}/flags": {"post": op(
            "flagPost", "Flag someone else's post for the moderators (once per post)",
            _ok("201", obj(flag=ref("Flag")), "Flagged"), ["404", "409", "429"], body="NewFlag", params=by_id,
            security=SIGNED_IN, tag="moderation")},
        "/api/flags": {"get": op(
            "listFlags", "The review queue: flags of one status, newest first (moderator)",
            _ok("200", obj(flags=ARRAY(ref("Flag")), next=nullable(STR), open={"type": "integer", "minimum": 0})),
            ["400"], params=[_param("status", "query", {"enum": ["open", "resolved", "dismissed"],
                                                         "default": "open"}, "Which flags"),
                             LIMIT(moderation.FLAGS), BEFORE], security=SIGNED_IN, tag="moderation")},
        "/api/flags/{id}": {"put": op(
            "settleFlag", "Resolve or dismiss a flag, and every other open flag of its post (moderator)",
            _ok("200", obj(flag=ref("Flag"))), ["404", "429"], body="FlagChange", params=by_id, security=SIGNED_IN,
            tag="moderation")},
        "/api/modlog": {"get": op(
            "modlog", "The public moderation log, newest first",
            _ok("200", obj(entries=ARRAY(ref("ModlogEntry")), next=nullable(STR))), ["400"],
            params=[LIMIT(moderation.MODLOG), BEFORE], tag="moderation")},
        "/api/users/{username}/suspension": {"put": op(
            "suspendUser", "Suspend a member until a time, or lift it with null (moderator); their sessions end",
            _ok("200", obj(user=ref("Profile"))),
            ["404", "429"], body="Suspension", params=[PATH_USERNAME], security=SIGNED_IN, tag="moderation")},
        "/api/users/{username}/ignored": {"put": op(
            "ignoreUser", "Ignore a member or stop: their posts come to me collapsed (ignored: true) and none of "
            "their actions notifies or mails me; a moderator or oneself → 422 field username",
            _ok("200", obj(ignored=BOOL)), ["404", "429"], body="Ignored", params=[PATH_USERNAME],
            security=SIGNED_IN, tag="profiles")},
        "/api/users/{username}/silence": {"put": op(
            "silenceUser", "Silence a member or lift it (moderator): their posts are hidden from everyone but "
            "moderators and themselves, they may not post (403 silenced); a log entry user.silenced / "
            "user.unsilenced; a moderator cannot be silenced (403)", _ok("200", obj(user=ref("Profile"))),
            ["404", "429"], body="Silence", params=[PATH_USERNAME], security=SIGNED_IN, tag="moderation")},
        "/api/presence": {"get": op("sitePresence", "Active Now, site-wide, by display name",
                                    _ok("200", ref("Presence")), ["400"], params=[LIMIT(forum.PRESENCE), AFTER])},
        "/api/stream": {"get": op(
            "stream", "Server-sent events: what /ws carries for a subscription to `thread` (its events, each with "
            "`id` = seq, and its presence) plus my own frames and site presence, each message's `data` one frame "
            "(docs/live.md \"Transports\"). Resumes after Last-Event-ID (or `since`) with no gap and no duplicate",
            {"200": {"description": "The stream (text/event-stream), open until the client leaves",
                     "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
            ["400", "403", "404", "429"],
            params=[_param("thread", "query", ID, "The thread to follow (absent: my frames and site presence only)"),
                    _param("feed", "query", {"type": "string", "pattern": fields.whole(FEED)},
                           "A thread list to follow too: all or category:SLUG (its `feed` frames)"),
                    _param("since", "query", {"type": "integer", "minimum": 0, "maximum": BIGINT},
                           "Replay the thread's events after this seq first (needs `thread`)"),
                    _param("Last-Event-ID", "header", {"type": "string", "pattern": "^[0-9]{0,19}$"},
                           "Sent by EventSource when it reconnects: the same as `since`, which it overrides")],
            security=NOBODY)},
        "/api/render": {"post": op(
            "renderPreview", "Render Markdown exactly as a post would be (the composers' preview)",
            _ok("200", obj(html=STR)), ["429"], body="Preview", security=SIGNED_IN)},
        "/api/openapi.json": {"get": _meta("openapi", "This document", _ok("200", {"type": "object"}))},
        "/healthz": {"get": _meta("healthz", "Liveness", _ok("200", obj(status={"const": "ok"})))},
        "/readyz": {"get": _meta("readyz", "Database and broker reachable", {
            **_ok("200", obj(status={"const": "ok"}, broker=STR)),
            **_ok("503", obj(status=STR, problems=ARRAY(STR)), "Not ready")})},
        "/metrics": {"get": _meta("metrics", "Prometheus metrics (to PARLEY_METRICS_ALLOW only)", {
            "200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": STR}}},
            "404": {"description": "The client is not in PARLEY_METRICS_ALLOW (as for a path that does not exist)",
                    "content": {"application/json": {"schema": ref("Error")}}}})},
    }


def _build() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parley", "version": "0.1.0",
                 "description": "A real-time Q&A discussion service. Live events are on the /ws websocket "
                                "(see docs/api.md). A state-changing request must be application/json and, "
                                "when it carries an Origin header, come from an allowed origin (else 403)."},
        "paths": _paths(),
        "components": {
            "schemas": {**_request_schemas(), **_response_schemas()},
            "securitySchemes": {
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                               "description": "The session cookie set by sign-up and sign-in"},
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "An API key's token (POST /api/me/api-keys): Authorization: Bearer "
                                              "TOKEN; a read key may only read (403 read_only_key), a deleted one "
                                              "is 401 bad_api_key; no Origin check"}},
        },
    }


@cache
def _document() -> dict[str, Any]:
    return _build()


def document() -> dict[str, Any]:
    return copy.deepcopy(_document())


@cache
def encoded() -> bytes:
    """The document as JSON, built once per process on the first GET /api/openapi.json (its character classes
    take ~0.25 s of CPU, which a start no longer pays: most processes are never asked). Only the bytes are kept,
    not the dict: its ~4,500 containers would otherwise stay in every full collection's walk."""
    return msgspec.json.encode(_build())
