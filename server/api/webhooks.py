"""Webhooks over HTTP (CONTRACT "Webhooks", docs/api.md "Webhooks"): moderators make, list and delete them and
read their delivery log. Delivery: outbox/webhooks.py; where a URL may point: outbox/targets.py."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, fields, shapes
from ..db import transaction
from ..errors import Conflict, Invalid
from ..outbox import targets
from ..outbox.webhooks import new_secret
from ..store import webhooks
from .common import json, no_content, state, writing
from .inputs import PageSize, path_id, query, query_limit

# What a webhook may ask for: the live event names, and thread.created (a thread's event 1).
NAMES: tuple[str, ...] = ("thread.created", *get_args(shapes.EventName))
EventNames = Annotated[list[Literal[NAMES]], msgspec.Meta(  # type: ignore[valid-type]
    min_length=1, max_length=len(NAMES), extra_json_schema={"uniqueItems": True})]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=targets.URL_MAX, pattern=fields.NO_NUL,
                                  description="An http:// or https:// URL on a public address")]
DELIVERIES = PageSize(50, 200)


class NewWebhook(msgspec.Struct):
    url: Url
    events: EventNames


async def create_webhook(request: Request) -> Response:
    st, user, body, _ = await writing(request, NewWebhook, bucket="moderation", moderator=True)
    if len(set(body.events)) != len(body.events):
        raise Invalid("Name each event once", field="events")
    try:
        await targets.check(body.url, st.settings.webhook_allow_private)
    except targets.Refused as exc:
        raise Invalid(f"The URL is refused: {exc}", field="url") from None
    secret = new_secret()
    async with transaction(st.pool) as conn:
        if await webhooks.count_locked(conn) >= webhooks.MAX_HOOKS:
            raise Conflict(f"There are {webhooks.MAX_HOOKS} webhooks already: delete one first",
                           code="too_many_webhooks")
        hook = await webhooks.create(conn, body.url, list(body.events), secret, user["id"])
    return json({"webhook": hook, "secret": secret}, 201)


async def _moderator(request: Request) -> None:
    st = state(request)
    auth.require_moderator(await auth.require_user(request, st))


async def list_webhooks(request: Request) -> Response:
    await _moderator(request)
    return json({"webhooks": await webhooks.listing(state(request).pool)})


async def delete_webhook(request: Request) -> Response:
    st, _, _, hook_id = await writing(request, bucket="moderation", moderator=True)
    await webhooks.delete(st.pool, hook_id)
    return no_content()


async def list_deliveries(request: Request) -> Response:
    await _moderator(request)
    hook_id = path_id(request)
    page = await webhooks.deliveries(state(request).pool, hook_id, query_limit(request, DELIVERIES),
                                     query(request, "before") or None)
    return json(page)
