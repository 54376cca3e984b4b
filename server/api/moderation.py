"""Flags, the review queue, the public moderation log and suspensions over HTTP (docs/api.md, "Moderation")."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, effects, limits, privileges, wire
from ..db import transaction
from ..errors import BadRequest, Forbidden, NotFound
from ..fields import Instant, Text
from ..state import AppState
from ..store import SessionsEnded, Written, flags, modlog, profiles, sessions, silence, users
from .common import json, state, writing
from .inputs import PageSize, query, query_limit

Note = Annotated[str, Text(1, limits.NOTE_MAX, blank_is_none=True)]  # a blank note or reason is no note

log = logging.getLogger(__name__)


FLAGS, MODLOG = PageSize(50, 100), PageSize(50, 100)


class NewFlag(msgspec.Struct):
    reason: flags.Reason
    note: Note | None = None


class FlagChange(msgspec.Struct):
    status: Literal["resolved", "dismissed"]


class Silence(msgspec.Struct):
    silenced: bool
    reason: Note | None = None


class Suspension(msgspec.Struct):
    until: Instant | None
    reason: Note | None = None


async def tell_moderators(st: AppState) -> None:
    """After a flag changed (committed): every moderator's open page updates its queue count, live."""
    try:
        frame = wire.flag_count(await flags.open_count(st.pool))
        moderators = await users.moderator_ids(st.pool)
    except Exception as exc:  # the count is also in GET /api/flags; a lost update is refreshed there
        effects.failed("flag count", exc)
        return
    await effects.after_commit(st, Written(None, user_frames=[(mod_id, frame) for mod_id in moderators]))


async def create_flag(request: Request) -> Response:
    st, user, body, post_id = await writing(request, NewFlag, bucket="flag")
    privileges.require(user, "flag", st.settings.trust, "flag")
    note = body.note
    async with transaction(st.pool) as conn:
        flag = await flags.create(conn, post_id, user, body.reason, note)
        # A third spam flagger of a new account silences it (store/silence.py).
        written = await silence.after_spam_flag(conn, post_id) if body.reason == "spam" else Written(None)
    await effects.after_commit(st, written)
    await tell_moderators(st)
    return json({"flag": flag}, 201)


async def list_flags(request: Request) -> Response:
    st = state(request)
    user = await auth.require_user(request, st)
    auth.require_moderator(user)
    status = query(request, "status", "open")
    if status not in flags.STATUSES:
        raise BadRequest("status must be open, resolved or dismissed", code="bad_parameter", field="status")
    lim = query_limit(request, FLAGS)
    page = await flags.listing(st.pool, status, lim, query(request, "before") or None)
    return json({**page, "open": await flags.open_count(st.pool)})


async def update_flag(request: Request) -> Response:
    st, user, body, flag_id = await writing(request, FlagChange, moderator=True, bucket="moderation")
    async with transaction(st.pool) as conn:
        flag = await flags.settle(conn, flag_id, user, body.status)
    await tell_moderators(st)
    return json({"flag": flag})


async def list_modlog(request: Request) -> Response:
    st = state(request)
    lim = query_limit(request, MODLOG)
    return json(await modlog.listing(st.pool, lim, query(request, "before") or None))


async def suspend(request: Request) -> Response:
    """PUT /api/users/{username}/suspension: set or lift; every session of the member ends at once."""
    st, moderator, body, _ = await writing(request, Suspension, moderator=True, bucket="moderation")
    reason = body.reason
    until = body.until
    if until is not None and until <= datetime.now(UTC):
        until = None  # suspended until a time that has passed: not suspended, the same as null (docs/api.md)
    async with transaction(st.pool) as conn:
        target = await users.by_username(conn, request.path_params["username"])
        if target is None:
            raise NotFound(f"No user {request.path_params['username']!r}")
        if target["id"] == moderator["id"]:
            raise Forbidden("A moderator cannot suspend themselves")
        # A suspension raises the member's credential epoch in this statement: every session made before,
        # and any sign-in racing it, is dead from COMMIT on (store/sessions.py).
        epoch = await users.suspend(conn, target["id"], until, reason)
        if until is not None:
            await sessions.revoke_all(conn, target["id"])
        await modlog.record(conn, "user.suspended" if until is not None else "user.unsuspended", moderator["id"],
                            user_id=target["id"], reason=reason)
    if until is not None:  # their sockets close with 4001 on every process (live/userchannel.py)
        await effects.after_commit(st, Written(None, sessions_ended=[SessionsEnded(target["id"], before=epoch)]))
    return json({"user": await profiles.profile(st.pool, target["username"])})


async def set_silence(request: Request) -> Response:
    """PUT /api/users/{username}/silence: a moderator silences a member or lifts it (their posts come back)."""
    st, moderator, body, _ = await writing(request, Silence, moderator=True, bucket="moderation")
    async with transaction(st.pool) as conn:
        target = await users.by_username(conn, request.path_params["username"])
        if target is None:
            raise NotFound(f"No user {request.path_params['username']!r}")
        if target["is_moderator"] and body.silenced:
            raise Forbidden("A moderator cannot be silenced")
        written = await silence.set_silenced(conn, target["id"], moderator["id"], body.silenced, body.reason)
    await effects.after_commit(st, written)
    return json({"user": await profiles.profile(st.pool, target["username"])})
