"""Sign up, sign in, sign out, who am I, change password."""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth
from ..db import transaction
from ..errors import Conflict, Forbidden, Unauthorized
from ..live import userchannel
from ..state import AppState
from ..store import sessions, users
from ..wire import iso
from .common import NO_NUL, Text, json, limit, no_content, parse, state, whole

log = logging.getLogger(__name__)

USERNAME = users.USERNAME
# The contract's limits (CONTRACT "Limits"), declared here once: parse() enforces them, openapi.py publishes them.
Username = Annotated[str, msgspec.Meta(pattern=whole(USERNAME), description="3–32 of A-Z a-z 0-9 _ . -")]
# Any password up to 4 KiB is checked (a longer one is never right and only costs hashing time)…
Password = Annotated[str, msgspec.Meta(max_length=4096, pattern=NO_NUL)]
# …and a new one is 8–256 characters.
NewPassword = Annotated[str, msgspec.Meta(min_length=8, max_length=256, pattern=NO_NUL)]
DisplayName = Annotated[str, Text(1, 64, refuse="name")]


class SignUp(msgspec.Struct):
    username: Username
    password: NewPassword
    display_name: DisplayName | None = None


class SignIn(msgspec.Struct):
    username: Annotated[str, msgspec.Meta(pattern=NO_NUL)]
    password: Password


class PasswordChange(msgspec.Struct):
    old_password: Password
    new_password: NewPassword


async def end_sessions(st: AppState, user_id: int, **which: str | None) -> None:
    """Close the sockets of ended sessions on every process (after COMMIT; see live/userchannel.py).
    A lost message is caught by the hubs' session sweep within a few seconds."""
    try:
        await userchannel.end_sessions(st.broker, user_id, **which)
    except Exception as exc:
        log.warning("end_sessions publish for user %d failed (the sweep will close them): %s", user_id, exc)


def set_cookie(request: Request, response: Response, session_id: str) -> None:
    st = state(request)
    response.set_cookie(
        auth.COOKIE, st.cookies.dump(session_id), max_age=int(st.settings.session_idle_days * 86400),
        httponly=True, samesite="lax", path="/",
        secure=auth.scheme(request, st.settings) == "https")


async def sign_up(request: Request) -> Response:
    st = state(request)
    auth.check_origin(request, st.settings)
    body = await parse(request, SignUp)
    display = body.display_name if body.display_name is not None else body.username
    await limit(st, f"signup:ip:{auth.client_ip(request, st.settings)}", st.settings.limits.signup_per_ip)
    if await users.moderator_copied(st.pool, display) is not None:  # a copy of a moderator's name (docs/security.md)
        raise Conflict("That name is a moderator's: choose another display name", code="display_name_taken",
                       field="display_name" if body.display_name is not None else "username")
    password_hash = await auth.hash_password(body.password)
    session_id = st.cookies.new_session_id()
    async with transaction(st.pool) as conn:
        row = await users.create(conn, body.username, display, password_hash)
        await sessions.create(conn, session_id, row["id"])
    response = json({"user": users.full(row)}, 201)
    set_cookie(request, response, session_id)
    return response


async def sign_in(request: Request) -> Response:
    st = state(request)
    auth.check_origin(request, st.settings)
    body = await parse(request, SignIn)
    limits = st.settings.limits
    await limit(st, f"signin:ip:{auth.client_ip(request, st.settings)}", limits.signin_per_ip)
    # Failures per username back off password guessing spread over many addresses.
    fail_key = f"signin:fail:{users.canonical(body.username)}"
    # A probe: costs nothing, but needs a whole token left (a failure takes one; success takes none).
    await limit(st, fail_key, limits.signin_failures_per_user, cost=0, need=1)
    row = await users.by_username(st.pool, body.username)
    if not await auth.verify_password(row["password_hash"] if row else None, body.password) or row is None:
        await st.limiter.hit(fail_key, limits.signin_failures_per_user)
        raise Unauthorized("Wrong username or password", code="bad_credentials")
    if users.suspended(row):
        raise Forbidden(f"This account is suspended until {iso(row['suspended_until'])}", code="suspended")
    if auth.needs_rehash(row["password_hash"]):
        await users.set_password(st.pool, row["id"], await auth.hash_password(body.password))
    # A fresh id at every sign-in: a session id planted before sign-in is never promoted (no fixation).
    old = st.cookies.load(request.cookies.get(auth.COOKIE))
    session_id = st.cookies.new_session_id()
    async with transaction(st.pool) as conn:
        if old is not None:
            await sessions.revoke(conn, old)
        await sessions.create(conn, session_id, row["id"])
    response = json({"user": users.full(row)})
    set_cookie(request, response, session_id)
    return response


async def sign_out(request: Request) -> Response:
    st = state(request)
    auth.check_origin(request, st.settings)
    sid = st.cookies.load(request.cookies.get(auth.COOKIE))
    user = await auth.current_user(request, st)
    if user is None or sid is None:
        raise Unauthorized("Sign in first")
    await sessions.revoke(st.pool, sid)
    await end_sessions(st, user["id"], only=sessions.key(sid))
    response = no_content()
    response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="lax")
    return response


async def me(request: Request) -> Response:
    user = await auth.require_user(request, state(request))
    return json({"user": users.full(user)})


async def change_password(request: Request) -> Response:
    """PUT /api/me/password: every other session of the user is revoked."""
    st = state(request)
    auth.check_origin(request, st.settings)
    user = await auth.require_user(request, st)
    body = await parse(request, PasswordChange)
    fail_key = f"signin:fail:{users.canonical(user['username'])}"
    await limit(st, f"password:{user['id']}", st.settings.limits.password_change_per_user)
    await limit(st, fail_key, st.settings.limits.signin_failures_per_user, cost=0, need=1)
    if not await auth.verify_password(user["password_hash"], body.old_password):
        await st.limiter.hit(fail_key, st.settings.limits.signin_failures_per_user)
        # 403, not 422: the body is well formed; proving who you are failed (docs/api.md).
        raise Forbidden("The current password is wrong", code="wrong_password", field="old_password")
    new_hash = await auth.hash_password(body.new_password)
    session_id = st.cookies.new_session_id()
    async with transaction(st.pool) as conn:
        await users.set_password(conn, user["id"], new_hash)
        await sessions.revoke_all(conn, user["id"])
        await sessions.create(conn, session_id, user["id"])
    # Every other session's sockets close; this device's stay open, now on its new session.
    old = st.cookies.load(request.cookies.get(auth.COOKIE))
    await end_sessions(st, user["id"], keep=sessions.key(old) if old else None, rebind=sessions.key(session_id))
    response = json({"user": users.full(user)})
    set_cookie(request, response, session_id)
    return response
