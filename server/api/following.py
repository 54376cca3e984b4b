"""Following a thread and the reader's read position (CONTRACT `PUT …/following`, `PUT …/read`)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import limits
from ..store import following
from .common import json, no_content, writing


class Following(msgspec.Struct):
    following: bool


class ReadPosition(msgspec.Struct):
    seq: Annotated[int, msgspec.Meta(ge=0, le=limits.BIGINT)]


async def set_following(request: Request) -> Response:
    st, user, body, thread_id = await writing(request, Following, bucket="edit")
    return json({"following": await following.set_following(st.pool, user["id"], thread_id, body.following)})


async def set_read(request: Request) -> Response:
    st, user, body, thread_id = await writing(request, ReadPosition, bucket="read")
    await following.set_read(st.pool, user["id"], thread_id, body.seq)
    return no_content()
