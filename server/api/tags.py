"""Tags, similar questions and bookmarks over HTTP (CONTRACT rev. 3 "Tags, duplicates, bookmarks").

A tag name is 1–32 of `[a-z0-9+#.-]` once lower-cased: capitals are folded, anything else (spaces, other
punctuation, letters outside ASCII, look-alikes such as the Kelvin sign, which str.lower() would turn into `k`)
is 422 field `tags`; so are a sixth tag and an empty name. The same name twice counts once.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .. import auth, limits
from ..errors import BadRequest
from ..fields import whole
from ..store import bookmarks as bookmark_store
from ..store import similar as similar_store
from ..store import tags as tag_store
from .common import json, limit, read_pool, replica_read, state, writing
from .inputs import PageSize, query, query_limit

# Before folding: ASCII only (A-Z too), so no look-alike folds into a name.
TAG = re.compile(f"[A-Z{limits.TAG_CHARS}]{{1,{limits.TAG_MAX}}}")
TAG_FOLDED = re.compile(f"[{limits.TAG_CHARS}]{{1,{limits.TAG_MAX}}}")
TagName = Annotated[str, msgspec.Meta(pattern=whole(TAG),
                                      description=f"1–{limits.TAG_MAX} of a-z 0-9 + # . - (capitals folded)")]
Tags = Annotated[list[TagName], msgspec.Meta(max_length=limits.TAGS_MAX,
                                             description=f"0–{limits.TAGS_MAX} tag names")]
TAG_LIST = PageSize(tag_store.LIST_DEFAULT, tag_store.LIST_MAX)
BOOKMARKS = PageSize(20, 100)
TITLE_MAX, BODY_MAX = 200, 20_000  # the ask form's title and body (longer ones are cut, not refused)


def normal(names: list[str]) -> list[str]:
    """Validated names (parse() checked their shape) folded to lower case, each once, in the order given."""
    out: list[str] = []
    for name in names:
        folded = name.lower()
        if folded not in out:
            out.append(folded)
    return out


def tag_param(request: Request, name: str = "tag") -> str | None:
    """A tag named in the query (`tag=`) or the path, folded; a malformed one is 400 naming it."""
    raw = request.path_params[name] if name in request.path_params else query(request, name)
    if raw is None or raw == "":
        return None
    if not TAG.fullmatch(raw):
        raise BadRequest(f"{name} must be 1–{limits.TAG_MAX} of a-z 0-9 + # . -", code="bad_parameter", field=name)
    return raw.lower()


class TagFollowing(msgspec.Struct):
    following: bool


class BookmarkChange(msgspec.Struct):
    bookmarked: bool


@replica_read
async def list_tags(request: Request) -> Response:
    lim = query_limit(request, TAG_LIST)
    q = query(request, "q")
    prefix = q.strip().lower() if q else None
    if prefix and not TAG_FOLDED.fullmatch(prefix):
        return json({"tags": []})  # no tag starts so
    return json({"tags": await tag_store.listing(read_pool(request), prefix, lim)})


async def set_tag_following(request: Request) -> Response:
    st, user, body, _ = await writing(request, TagFollowing, bucket="edit")
    name = tag_param(request, "name")
    assert name is not None
    return json({"following": await tag_store.set_following(st.pool, user["id"], name, body.following)})


@replica_read
async def similar(request: Request) -> Response:
    st = state(request)
    title = (query(request, "title") or "").strip()[:TITLE_MAX]
    body = (query(request, "body") or "").strip()[:BODY_MAX]
    if "\x00" in title or "\x00" in body:
        raise BadRequest("title and body must not contain NUL characters", code="bad_parameter", field="title")
    if not title:
        raise BadRequest("title is required", code="bad_parameter", field="title")
    limits = st.settings.limits
    await limit(st, f"search:ip:{auth.client_key(request, st.settings)}", limits.search_per_ip)
    found = await similar_store.similar(read_pool(request), title, body, timeout=st.settings.search_timeout_seconds,
                                       vocabulary=st.vocabulary)
    return json({"threads": found})


class SimilarOtherMethods:
    """Any other method at /api/threads/similar: 405 (without this route `/api/threads/{id}` would take a PATCH
    or DELETE of it as one of thread "similar"). An ASGI app, so that its route takes every method."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await json({"error": {"code": "method_not_allowed", "message": "Method not allowed"}}, 405,
                   {"Allow": "GET, HEAD"})(scope, receive, send)


async def set_bookmark(request: Request) -> Response:
    st, user, body, post_id = await writing(request, BookmarkChange, bucket="edit")
    return json({"bookmarked": await bookmark_store.set_bookmark(st.pool, user["id"], post_id, body.bookmarked)})


async def list_bookmarks(request: Request) -> Response:
    st = state(request)
    user = await auth.require_user(request, st)
    lim = query_limit(request, BOOKMARKS)
    return json(await bookmark_store.listing(st.pool, user["id"], lim, query(request, "before") or None))
