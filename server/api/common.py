"""The frame of every handler: its AppState, JSON answers, the rate-limit buckets of writes, and `writing()`,
the one opening of a signed-in write (Origin, session, rights, path id, body, bucket, in that order).
Reading the request is api/inputs.py; the field rules are server/fields.py.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Generic, NamedTuple, TypeVar

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, db, replicas
from ..sessioncache import Guard
from ..state import AppState
from .inputs import parse, path_id

T = TypeVar("T")


def state(request: Request) -> AppState:
    return request.app.state.parley  # type: ignore[no-any-return]


Handler = Callable[[Request], Awaitable[Response]]
# A replica that raises these is gone (not a slow statement: a search's own timeout is not the replica's fault).
REPLICA_GONE = tuple(e for e in db.UNAVAILABLE
                     if e not in (TimeoutError, asyncpg.exceptions.QueryCanceledError))


def replica_read(handler: Handler) -> Handler:
    """Mark a read route whose reads may go to a replica (server/replicas.py): the handler reads through
    read_pool(request). If the replica fails under it, the replica is skipped and the handler runs again on the
    primary (read routes only: running one twice changes nothing)."""
    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        st = state(request)
        if not st.replicas.enabled:
            return await handler(request)
        pool = st.replicas.pick(replicas.parse_cookie(request.cookies.get(replicas.COOKIE)))
        request.state.read_pool = pool
        try:
            return await handler(request)
        except REPLICA_GONE as exc:
            if not st.replicas.is_replica(pool):
                raise
            st.replicas.mark_down(pool, exc)
            request.state.read_pool = st.pool
            return await handler(request)
    return run


def read_pool(request: Request) -> asyncpg.Pool:
    """The pool this request reads from: a replica on a replica_read route when one may serve it, else the
    primary's."""
    pool = getattr(request.state, "read_pool", None)
    return pool if pool is not None else state(request).pool


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(data), status_code=status, media_type="application/json",
                    headers=headers)


def no_content() -> Response:
    return Response(status_code=204)


async def limit(st: AppState, key: str, rule: tuple[int, float], cost: float = 1.0,
                need: float | None = None) -> None:
    """Take from a token bucket; 429 with Retry-After when it is empty."""
    from ..errors import RateLimited
    wait = await st.limiter.hit(key, rule, cost, need)
    if wait > 0:
        raise RateLimited(wait)


# A user's token buckets for writes, by name: the key is "<name>:<user id>", the rule a field of Limits.
BUCKETS = {
    "thread": lambda lim: lim.thread_per_user,
    "post": lambda lim: lim.post_per_user,
    "flag": lambda lim: lim.post_per_user,
    "edit": lambda lim: lim.edit_per_user,
    "render": lambda lim: lim.edit_per_user,
    "vote": lambda lim: lim.vote_per_user,
    "read": lambda lim: lim.read_per_user,
    "notifications_read": lambda lim: lim.notifications_read_per_user,
    "moderation": lambda lim: lim.moderation_per_user,
    "preferences": lambda lim: lim.edit_per_user,
    "upload": lambda lim: lim.upload_per_user,
    "draft": lambda lim: lim.draft_per_user,
}


class Writing(NamedTuple, Generic[T]):
    st: AppState
    user: Any  # the users row of the session (asyncpg.Record)
    body: T
    id: int  # the route's {id}, 0 when it has none


SPENT = "parley.bucket_spent"  # set in a request's scope once writing() has spent its token


async def writing(request: Request, model: type[T] | None = None, *, bucket: str | None = None,
                  moderator: bool = False) -> Writing[T]:
    """The opening of every signed-in write, in one order: the Origin first (a cross-site request
    learns nothing else), the session, moderator rights, the {id} in the path, the body parsed with its
    limits, and last the user's token bucket (a request refused for its shape spends no token)."""
    st = state(request)
    auth.check_origin(request, st.settings)
    return await _opened(request, st, await auth.require_user(request, st), model, bucket, moderator)


async def writing_cached(request: Request, model: type[T], *, bucket: str) -> tuple[Writing[T], Guard | None]:
    """writing() for a write that checks its session in its own statement (the reply: server/sessioncache.py): the
    user may come from the session cache, with the Guard that statement must check (None: looked up)."""
    st = state(request)
    auth.check_origin(request, st.settings)
    user, guard = await auth.require_user_cached(request, st, st.session_cache)
    return await _opened(request, st, user, model, bucket, False), guard


async def _opened(request: Request, st: AppState, user: Any, model: type[T] | None, bucket: str | None,
                  moderator: bool) -> Writing[T]:
    """The rest of writing(), once the user is known. A request run again after StaleSession (api/forum.py) has
    spent its token already (SPENT in its scope) and spends none."""
    if moderator:
        auth.require_moderator(user)
    id_ = path_id(request) if "id" in request.path_params else 0
    body = await parse(request, model) if model is not None else None
    if bucket is not None and not request.scope.get(SPENT):
        await limit(st, f"{bucket}:{user['id']}", BUCKETS[bucket](st.settings.limits))
        request.scope[SPENT] = True
    return Writing(st, user, body, id_)  # type: ignore[arg-type]
