"""Profiles, a user's posts and post permalinks over HTTP."""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, privileges
from ..errors import NotFound
from ..state import AppState
from ..store import ignores, posts, profiles, reputation, users
from .common import json, read_pool, replica_read, state
from .inputs import PageSize, path_id, query, query_limit

USERNAME_MAX = 32
USER_POSTS = PageSize(20, 100)
REPUTATION = PageSize(20, 100)


def path_username(request: Request) -> str:
    name = request.path_params["username"]
    if not 1 <= len(name) <= USERNAME_MAX or "\x00" in name:
        raise NotFound(f"No user {name[:USERNAME_MAX]!r}")
    return name


async def profile_for(st: AppState, pool: asyncpg.Pool, name: str, reader: Any) -> dict[str, Any]:
    """The Profile as `reader` sees it (the API's and the one the server-rendered page embeds): someone else's,
    seen by a member, says whether they ignore them (read from the primary, where the reader wrote it)."""
    user = await profiles.profile(pool, name)
    if reader is not None and reader["id"] != user["id"]:
        user["ignored"] = user["id"] in await ignores.ignored_by(st.pool, reader["id"])
    return user


async def posts_for(st: AppState, pool: asyncpg.Pool, name: str, reader: Any, limit: int,
                    before: str | None) -> dict[str, Any]:
    """A page of the user's posts as `reader` sees them: marked `ignored` when the reader ignores them."""
    page = await profiles.user_posts(pool, name, reader["id"] if reader else None, limit, before,
                                     posts.reader_of(reader))
    if reader is not None and page["posts"]:
        ignored = await ignores.ignored_by(st.pool, reader["id"])
        page["posts"] = [ignores.mark_post(p, ignored) for p in page["posts"]]
    return page


@replica_read
async def profile(request: Request) -> Response:
    st = state(request)
    reader = await auth.current_user(request, st)
    return json({"user": await profile_for(st, read_pool(request), path_username(request), reader)})


@replica_read
async def user_posts(request: Request) -> Response:
    st = state(request)
    name = path_username(request)
    lim = query_limit(request, USER_POSTS)
    reader = await auth.current_user(request, st)
    return json(await posts_for(st, read_pool(request), name, reader, lim, query(request, "before") or None))


@replica_read
async def permalink(request: Request) -> Response:
    st = state(request)
    post_id = path_id(request)
    reader = await auth.current_user(request, st)
    found = await profiles.permalink(read_pool(request), post_id, reader["id"] if reader else None,
                                     posts.reader_of(reader))
    if reader is not None:
        found["post"] = ignores.mark_post(found["post"], await ignores.ignored_by(st.pool, reader["id"]))
    return json(found)


async def reputation_ledger(request: Request) -> Response:
    """GET /api/users/{username}/reputation: their reputation ledger, newest first (public, as the sum is)."""
    st = state(request)
    name = path_username(request)
    lim = query_limit(request, REPUTATION)
    row = await users.by_username(st.pool, name)
    if row is None:
        raise NotFound(f"No user {name!r}")
    return json(await reputation.ledger(st.pool, row["id"], lim, query(request, "before") or None))


async def privilege_table(request: Request) -> Response:
    """GET /api/privileges: each privilege and the reputation it needs under this server's preset."""
    return json({"privileges": privileges.table(state(request).settings.trust)})


async def pending_posts(request: Request) -> Response:
    """GET /api/pending (moderator): the posts the spam check holds, newest first."""
    st = state(request)
    user = await auth.require_user(request, st)
    auth.require_moderator(user)
    lim = query_limit(request, USER_POSTS)
    return json(await profiles.pending_posts(st.pool, lim, query(request, "before") or None))
