"""Notifications over HTTP (publication after COMMIT is server/effects.py)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, limits, wire
from ..effects import after_commit
from ..store import Written
from ..store import notifications as store
from .common import json, state, writing
from .inputs import PageSize, query, query_limit

NOTIFICATIONS = PageSize(20, 100)
Id = Annotated[int, msgspec.Meta(ge=1, le=limits.BIGINT)]


class MarkRead(msgspec.Struct):
    ids: Annotated[list[Id], msgspec.Meta(max_length=1000)] | None = None
    all: bool = False


async def list_notifications(request: Request) -> Response:
    st = state(request)
    user = await auth.require_user(request, st)
    lim = query_limit(request, NOTIFICATIONS)
    return json(await store.listing(st.pool, user["id"], lim, query(request, "before") or None))


async def mark_read(request: Request) -> Response:
    st, user, body, _ = await writing(request, MarkRead, bucket="notifications_read")
    # all: true marks every one; else the ids given (none: nothing changes, the answer is the count).
    unread, changed = await store.mark_read(st.pool, user["id"], None if body.all else (body.ids or []))
    if changed:  # every tab of the user, on every process, shows the new count
        await after_commit(st, Written(None, user_frames=[(user["id"], wire.notifications(unread))]))
    return json({"unread": unread})
