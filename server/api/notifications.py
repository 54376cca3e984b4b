"""Notifications over HTTP, and their publication on the user channel after COMMIT (docs/live.md)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, wire
from ..live import userchannel
from ..state import AppState
from ..store import Written
from ..store import notifications as store
from .common import PageSize, json, query, query_limit, state, writing

log = logging.getLogger(__name__)

NOTIFICATIONS = PageSize(20, 100)
PUBLISH_BATCH = 256  # user-channel publishes per pipeline round trip (a fan-out this large goes as a batch)
Id = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class MarkRead(msgspec.Struct):
    ids: Annotated[list[Id], msgspec.Meta(max_length=1000)] | None = None
    all: bool = False


async def _send_all(st: AppState, frames: list[tuple[int, bytes]]) -> None:
    for i in range(0, len(frames), PUBLISH_BATCH):
        try:
            await userchannel.publish_frames(st.broker, frames[i:i + PUBLISH_BATCH])
        except Exception as exc:
            # Stored: the recipient still reads it over HTTP (the page reloads the count on reconnect).
            log.warning("notification publish failed: %s", exc)


async def publish(st: AppState, written: Written[Any]) -> None:
    """After COMMIT: each new notification to its recipient, and the new count to those it changed for.

    A large fan-out (a response in a thread with many followers) is ONE batch on the process-wide
    channel (userchannel.batch): one PUBLISH and no count query here; each process reads the counts
    of its own online recipients. A small one is published per user, with the counts read here."""
    if not written.notified and not written.recount:
        return
    if len(written.notified) + len(written.recount) >= userchannel.BROADCAST_MIN:
        message = userchannel.batch(written.notified, written.recount)
        if message is not None:
            try:
                await userchannel.publish_batch(st.broker, message)
            except Exception as exc:  # stored: the recipients still read them over HTTP
                log.warning("notification batch publish failed: %s", exc)
            return
    await _publish(st, written)


async def _publish(st: AppState, written: Written[Any]) -> None:
    try:
        users = sorted({n["user_id"] for n in written.notified} | written.recount)
        counts = await store.unread_counts(st.pool, users)
    except Exception as exc:
        log.warning("unread counts for publication failed: %s", exc)
        return
    frames = [(n["user_id"], wire.notification(n["notification"], counts.get(n["user_id"], 0)))
              for n in written.notified]
    notified = {n["user_id"] for n in written.notified}
    frames += [(uid, wire.notifications(counts.get(uid, 0))) for uid in sorted(written.recount - notified)]
    await _send_all(st, frames)


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
        await _send_all(st, [(user["id"], wire.notifications(unread))])
    return json({"unread": unread})
