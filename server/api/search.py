"""GET /api/search: full-text search over titles and posts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .. import auth
from ..errors import BadRequest
from ..store import search as store
from .common import PageSize, json, query, query_limit, state

Q_MAX = 200
RESULTS = PageSize(20, 50)
CATEGORY_MAX = 64
AUTHOR_MAX = 32


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


async def search(request: Request) -> Response:
    st = state(request)
    q = _text(request, "q", Q_MAX, required=True)
    category = _text(request, "category", CATEGORY_MAX)
    author = _text(request, "author", AUTHOR_MAX)
    sort = query(request, "sort", "relevance")
    if sort not in store.SORTS:
        raise BadRequest("sort must be relevance or newest", code="bad_parameter", field="sort")
    lim = query_limit(request, RESULTS)
    reader = await auth.current_user(request, st)
    return json(await store.search(st.pool, q or "", category, author, sort, lim,
                                   query(request, "before") or None, reader["id"] if reader else None))
