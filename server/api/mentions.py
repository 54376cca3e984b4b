"""@mentions: completion (`GET /api/users?q=`) and turning a rendered body's @names into links."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import mentions
from ..errors import BadRequest
from ..state import AppState
from ..store import notifications, users
from .common import json, state
from .inputs import PageSize, query, query_limit

USERS = PageSize(10, 20)

async def search_users(request: Request) -> Response:
    st = state(request)
    q = query(request, "q", "") or ""
    if not 1 <= len(q) <= 32 or "\x00" in q:
        raise BadRequest("q must be 1–32 characters", code="bad_parameter", field="q")
    lim = query_limit(request, USERS)
    rows = await users.by_prefix(st.pool, q, lim)
    return json({"users": [users.brief(r) for r in rows]})


async def link(st: AppState | Any, html: str) -> tuple[str, list[int]]:
    """The rendered body with its mentions of existing users linked, and those users' ids in order."""
    names = mentions.candidates(html)
    if not names:
        return html, []
    rows = await notifications.resolve_mentions(st.pool, names)
    if not rows:
        return html, []
    ids: list[int] = []
    for r in rows:
        if r["id"] not in ids:
            ids.append(r["id"])
    return mentions.link(html, {r["lname"]: r["username"] for r in rows}), ids
