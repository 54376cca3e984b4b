"""The Markdown preview of the composers: the server's own renderer (server/render.py, off the event
loop within its size and time budgets), so what the preview shows is exactly what the post will show.
docs/api.md, "Where the contract is silent"."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .common import json, writing
from .forum import Body, render_body


class Preview(msgspec.Struct):
    body: Body  # the same rule as a post's body (parse() applies it)


async def render_preview(request: Request) -> Response:
    """POST /api/render {body} → 200 {html}: signed in only, rate-limited like edits (own bucket)."""
    st, user, body, _ = await writing(request, Preview, bucket="render")
    text = body.body
    return json({"html": await render_body(st, text, user["id"])})
