"""The Markdown preview of the composers: the server's own renderer (server/render.py, off the event
loop within its size and time budgets), so what the preview shows is exactly what the post will show.
docs/api.md, "Where the contract is silent"."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth
from .common import json, limit, parse, state
from .forum import Body, render_body


class Preview(msgspec.Struct):
    body: Body  # the same rule as a post's body (parse() applies it)


async def render_preview(request: Request) -> Response:
    """POST /api/render {body} → 200 {html}: signed in only, rate-limited like edits (own bucket)."""
    st = state(request)
    auth.check_origin(request, st.settings)
    user = await auth.require_user(request, st)
    body = await parse(request, Preview)
    text = body.body
    await limit(st, f"render:{user['id']}", st.settings.limits.edit_per_user)
    return json({"html": await render_body(st, text)})
