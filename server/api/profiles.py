"""Profiles, a user's posts and post permalinks over HTTP."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .. import auth
from ..errors import NotFound
from ..store import profiles
from .common import json, read_pool, replica_read, state
from .inputs import PageSize, path_id, query, query_limit

USERNAME_MAX = 32
USER_POSTS = PageSize(20, 100)


def path_username(request: Request) -> str:
    name = request.path_params["username"]
    if not 1 <= len(name) <= USERNAME_MAX or "\x00" in name:
        raise NotFound(f"No user {name[:USERNAME_MAX]!r}")
    return name


@replica_read
async def profile(request: Request) -> Response:
    return json({"user": await profiles.profile(read_pool(request), path_username(request))})


@replica_read
async def user_posts(request: Request) -> Response:
    st = state(request)
    name = path_username(request)
    lim = query_limit(request, USER_POSTS)
    reader = await auth.current_user(request, st)
    return json(await profiles.user_posts(read_pool(request), name, reader["id"] if reader else None, lim,
                                          query(request, "before") or None))


@replica_read
async def permalink(request: Request) -> Response:
    st = state(request)
    post_id = path_id(request)
    reader = await auth.current_user(request, st)
    return json(await profiles.permalink(read_pool(request), post_id, reader["id"] if reader else None))
