"""Drafts over HTTP (CONTRACT rev. 3 "Drafts and transports"): listed, written with compare-and-set, deleted by
their writer; each change reaches the writer's sockets (store/drafts.py returns the frame, after_commit sends it)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, limits
from ..db import transaction
from ..effects import after_commit
from ..errors import Invalid
from ..store import drafts as store
from .common import json, no_content, state, writing

KEY = store.KEY
DraftBody = Annotated[str, msgspec.Meta(max_length=limits.DRAFT_MAX,
                                        description="What the form holds, as the page encodes it (may be empty)")]


class DraftChange(msgspec.Struct):
    body: DraftBody
    revision: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None = None


def draft_key(request: Request) -> str:
    """The {key} of the path: ask, thread:ID, comment:ID or edit:ID (422 otherwise)."""
    key: str = request.path_params["key"]
    if not store.valid_key(key):
        raise Invalid("key must be ask, thread:ID, comment:ID or edit:ID", field="key")
    return key


async def list_drafts(request: Request) -> Response:
    st = state(request)
    user = await auth.require_user(request, st)
    return json({"drafts": await store.listing(st.pool, user["id"])})


async def put_draft(request: Request) -> Response:
    st, user, body, _ = await writing(request, DraftChange, bucket="draft")
    key = draft_key(request)
    async with st.pool.acquire() as conn:
        written = await store.put(conn, user["id"], key, body.body, body.revision)
    await after_commit(st, written)
    return json({"draft": written.value})


async def delete_draft(request: Request) -> Response:
    st, user, _, _ = await writing(request, bucket="draft")
    key = draft_key(request)
    async with transaction(st.pool) as conn:
        written = await store.discard(conn, user["id"], key)
    await after_commit(st, written)
    return no_content()
