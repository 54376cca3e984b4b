"""Leaving with one's data (CONTRACT "Leaving"): GET /api/me/export, everything the user wrote and set."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from .. import auth
from ..store import export as store
from ..wire import iso
from .common import BUCKETS, json, limit, state


async def export(request: Request) -> Response:
    st = state(request)
    user = await auth.require_user(request, st)
    await limit(st, f"export:{user['id']}", BUCKETS["edit"](st.settings.limits))  # a big read: the edit bucket
    document = {"exported_at": iso(datetime.now(UTC)), **await store.export(st.pool, user["id"])}
    filename = f"parley-export-{user['username']}.json"
    return json(document, headers={"content-disposition": f'attachment; filename="{filename}"',
                                   "cache-control": "no-store"})
