"""GET /api/search: full-text search over titles and posts.

A search's work is bounded in the store (server/store/search.py: words, ranking, snippets, a statement
timeout); here its rate: token buckets per address and per signed-in user, at most `slots()` searches of a
process at once (the rest of the site keeps the pool), and the search is cancelled, in PostgreSQL too, as
soon as the client hangs up.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, limits
from ..config import Settings
from ..errors import BadRequest, RateLimited
from ..state import AppState
from ..store import ignores
from ..store import search as store
from .common import json, limit, read_pool, replica_read, state
from .inputs import PageSize, query, query_limit, unless_gone

Q_MAX = limits.SEARCH_Q_MAX
RESULTS = PageSize(20, 50)
CATEGORY_MAX = 64
AUTHOR_MAX = 32
SLOT_WAIT = 0.5  # seconds a search waits for one of the process's slots, then 429


def slots(settings: Settings) -> int:
    """Searches one process runs at once: a quarter of its database pool (at least 2)."""
    return max(2, settings.db_pool_size // 4)


def _text(request: Request, name: str, high: int, required: bool = False) -> str | None:
    raw = query(request, name)
    value = raw.strip() if raw is not None else ""
    if not value:
        if required:
            raise BadRequest(f"{name} is required (1–{high} characters)", code="bad_parameter", field=name)
        return None
    if len(value) > high or "\x00" in value:
        raise BadRequest(f"{name} must be 1–{high} characters", code="bad_parameter", field=name)
    return value


async def _in_a_slot(st: AppState, pool: asyncpg.Pool, q: str, category: str | None, author: str | None, sort: str,
                     lim: int, before: str | None, reader_id: int | None) -> dict[str, Any]:
    """The search, in one of the process's slots (429 when none frees up within SLOT_WAIT)."""
    sem = st.search_slots
    try:
        await asyncio.wait_for(sem.acquire(), SLOT_WAIT)
    except TimeoutError:
        raise RateLimited(1, "Too many searches are running at once; try again in 1 s") from None
    try:
        return await store.search(pool, q, category, author, sort, lim, before, reader_id,
                                  timeout=st.settings.search_timeout_seconds)
    finally:
        sem.release()


@replica_read
async def search(request: Request) -> Response:
    st = state(request)
    q = _text(request, "q", Q_MAX, required=True)
    category = _text(request, "category", CATEGORY_MAX)
    author = _text(request, "author", AUTHOR_MAX)
    sort = query(request, "sort", "relevance")
    if sort not in store.SORTS:
        raise BadRequest("sort must be relevance or newest", code="bad_parameter", field="sort")
    lim = query_limit(request, RESULTS)
    before = query(request, "before") or None
    reader = await auth.current_user(request, st)
    limits = st.settings.limits
    await limit(st, f"search:ip:{auth.client_key(request, st.settings)}", limits.search_per_ip)
    if reader is not None:
        await limit(st, f"search:{reader['id']}", limits.search_per_user)
    found = await unless_gone(request, _in_a_slot(st, read_pool(request), q or "", category, author, sort, lim,
                                                  before, reader["id"] if reader else None))
    if reader is not None and found["results"]:
        ignored = await ignores.ignored_by(st.pool, reader["id"])
        found["results"] = [{**r, "post": ignores.mark_post(r["post"], ignored)} for r in found["results"]]
    return json(found)
