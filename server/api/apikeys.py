"""API keys over HTTP (CONTRACT "Identity and integrations"): made, listed and deleted by their owner, signed in
with a session (a key cannot make or delete keys). How a key authenticates: auth.session_of."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, limits
from ..db import transaction
from ..effects import after_commit
from ..errors import Forbidden, Invalid
from ..fields import Text
from ..store import apikeys
from .common import json, no_content, state, writing

TOKEN_PREFIX = "parley_"
KeyName = Annotated[str, Text(1, limits.DISPLAY_NAME_MAX, refuse="name")]
SCOPES = (["read"], ["read", "write"], ["write", "read"])  # what a key may do: read, or read and write
# The same set as a schema a client generator reads: "read", and "write" only beside it, each once.
Scopes = Annotated[list[Literal["read", "write"]], msgspec.Meta(
    min_length=1, max_length=2, extra_json_schema={"uniqueItems": True, "contains": {"const": "read"}})]


class NewApiKey(msgspec.Struct):
    name: KeyName
    scopes: Scopes


def _session_only(request: Request) -> None:
    if auth.by_api_key(request):
        raise Forbidden("API keys are managed while signed in, not with an API key", code="session_required")


async def create_key(request: Request) -> Response:
    st, user, body, _ = await writing(request, NewApiKey, bucket="edit")
    _session_only(request)
    if body.scopes not in SCOPES:
        raise Invalid('scopes must be ["read"] or ["read", "write"]', field="scopes")
    scopes: list[str] = sorted(body.scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with transaction(st.pool) as conn:
        key = await apikeys.create(conn, user["id"], body.name, scopes, token)
    return json({"api_key": key, "token": token}, 201)


async def list_keys(request: Request) -> Response:
    st = state(request)
    user = await auth.require_user(request, st)
    _session_only(request)
    return json({"api_keys": await apikeys.listing(st.pool, user["id"])})


async def delete_key(request: Request) -> Response:
    st, user, _, key_id = await writing(request, bucket="edit")
    _session_only(request)
    written = await apikeys.delete(st.pool, user["id"], key_id)
    await after_commit(st, written)
    return no_content()
