"""Leaving with one's data (CONTRACT "Leaving"): GET /api/me/export, everything the user wrote and set, and
DELETE /api/me, the account's deletion."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth
from ..db import transaction
from ..effects import after_commit
from ..errors import Forbidden
from ..store import export as store
from ..store import leaving
from ..wire import iso
from .accounts import Password
from .common import BUCKETS, json, limit, no_content, state
from .inputs import parse


async def export(request: Request) -> Response:
    st = state(request)
    user = await auth.require_user(request, st)
    await limit(st, f"export:{user['id']}", BUCKETS["edit"](st.settings.limits))  # a big read: the edit bucket
    document = {"exported_at": iso(datetime.now(UTC)), **await store.export(st.pool, user["id"])}
    filename = f"parley-export-{user['username']}.json"
    return json(document, headers={"content-disposition": f'attachment; filename="{filename}"',
                                   "cache-control": "no-store"})


class AccountDeletion(msgspec.Struct):
    password: Password
    erase_posts: bool = False


async def delete_me(request: Request) -> Response:
    """DELETE /api/me: the account goes (store/leaving.py); every session and socket of it ends (4001)."""
    st = state(request)
    auth.check_origin(request, st.settings)
    user = await auth.require_user(request, st)
    if auth.by_api_key(request):
        raise Forbidden("An account is deleted while signed in, not with an API key", code="session_required")
    body = await parse(request, AccountDeletion)
    await limit(st, f"password:{user['id']}", st.settings.limits.password_change_per_user)
    # An account made by single sign-on has no password: it confirms with an empty one (its session is the proof).
    passwordless = user["password_hash"] == "" and body.password == ""
    if not passwordless and not await auth.verify_password(user["password_hash"] or None, body.password):
        # 403, as a password change's: the body is well formed; proving who you are failed (docs/api.md).
        raise Forbidden("The password is wrong", code="wrong_password", field="password")
    async with transaction(st.pool) as conn:
        written = await leaving.delete_account(conn, user, body.erase_posts)
    await after_commit(st, written)
    response = no_content()
    response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="lax")
    return response
