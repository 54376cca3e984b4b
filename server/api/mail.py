"""E-mail over HTTP: the address, verification, password reset, preferences, one-click unsubscribe
(CONTRACT "E-mail"; docs/api.md "E-mail"). The mails themselves are outbox rows written in the same
transaction (store/email.py); after_commit only wakes the sender."""

from __future__ import annotations

import email.parser
import email.policy
import logging
from typing import Annotated, Literal
from urllib.parse import parse_qs

import msgspec
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from .. import auth
from ..db import transaction
from ..effects import after_commit
from ..errors import BadRequest, Forbidden, Invalid, Unauthorized, UnsupportedMediaType
from ..fields import NO_NUL
from ..state import AppState
from ..store import SessionsEnded, Written, sessions, users
from ..store import addresses as store
from ..wire import iso
from .accounts import Email, NewPassword, Password, mail_limits, normalize, set_cookie
from .common import json, limit, state, writing
from .inputs import parse, read_body

log = logging.getLogger(__name__)

# A token as our links carry it.
Token = Annotated[str, msgspec.Meta(max_length=200, pattern=NO_NUL, description="The token from the mail's link")]


class EmailChange(msgspec.Struct):
    email: Email | None
    password: Password


class VerifyEmail(msgspec.Struct):
    token: Token


class ResetRequest(msgspec.Struct):
    email: Email


class ResetConfirm(msgspec.Struct):
    token: Token
    new_password: NewPassword


class PreferencesChange(msgspec.Struct):
    email_notifications: Literal["always", "away", "never"] | None = None
    digest: Literal["off", "daily", "weekly"] | None = None


async def set_email(request: Request) -> Response:
    """PUT /api/me/email {email, password}: the address, unverified, and a verification mail to it. The same
    address again: a verified one stays verified (no mail), an unverified one gets a new mail. null removes it."""
    st, user, body, _ = await writing(request, EmailChange)
    address = normalize(body.email) if body.email is not None else None
    await limit(st, f"password:{user['id']}", st.settings.limits.password_change_per_user)
    if not await auth.verify_password(user["password_hash"], body.password):
        raise Forbidden("The password is wrong", code="wrong_password", field="password")
    if address is not None and not (address == user["email"] and user["email_verified"]):
        await mail_limits(st, request, address)
    async with transaction(st.pool) as conn:
        row = await store.set_address(conn, user["id"], address)
        written: Written[None] = Written(None)
        if address is not None and not row["email_verified"]:
            written = await store.send_verification(conn, st.mailer.composer, row)
    await after_commit(st, written)
    return json({"user": users.full(row)})


async def verify_email(request: Request) -> Response:
    """POST /api/email/verify {token}: the token is enough (no session)."""
    st = state(request)
    auth.check_origin(request, st.settings)
    body = await parse(request, VerifyEmail)
    await limit(st, f"token:ip:{auth.client_key(request, st.settings)}", st.settings.limits.token_per_ip)
    async with transaction(st.pool) as conn:
        row = await store.verify(conn, body.token)
    return json({"user": users.full(row)})


async def request_reset(request: Request) -> Response:
    """POST /api/password-reset {email} → 202 whether or not the address is known. The look-up and the mail
    happen after the answer is sent, so its timing tells nothing either."""
    st = state(request)
    auth.check_origin(request, st.settings)
    auth.refuse_passwords(st.settings)
    body = await parse(request, ResetRequest)
    address = normalize(body.email)
    await mail_limits(st, request, address)
    response = json({"accepted": True}, 202)
    response.background = BackgroundTask(_send_reset, st, address)
    return response


async def _send_reset(st: AppState, address: str) -> None:
    try:
        async with transaction(st.pool) as conn:
            user = await store.by_verified_address(conn, address)
            if user is None or users.suspended(user):
                return
            written = await store.send_reset(conn, st.mailer.composer, user)
        await after_commit(st, written)
    except Exception as exc:  # nobody waits for this answer: log it (the person may ask again)
        log.warning("password reset mail not queued: %s", exc)


async def confirm_reset(request: Request) -> Response:
    """POST /api/password-reset/confirm {token, new_password}: the new password, signed in; every earlier
    session of the user ends (their sockets close with 4001), as with a password change."""
    st = state(request)
    auth.check_origin(request, st.settings)
    auth.refuse_passwords(st.settings)
    body = await parse(request, ResetConfirm)
    await limit(st, f"token:ip:{auth.client_key(request, st.settings)}", st.settings.limits.token_per_ip)
    new_hash = await auth.hash_password(body.new_password)  # before the transaction: it takes ~50 ms
    session_id = st.cookies.new_session_id()
    async with transaction(st.pool) as conn:
        user = await store.take_reset(conn, body.token)
        if users.suspended(user):  # rolled back: the token stays unused
            raise Forbidden(f"This account is suspended until {iso(user['suspended_until'])}", code="suspended")
        epoch = await users.change_password(conn, user["id"], user["token_epoch"], new_hash)
        if epoch is None:
            raise store.bad_token()
        await sessions.revoke_all(conn, user["id"])
        if not await sessions.create(conn, session_id, user["id"], epoch):
            raise Unauthorized("The account changed meanwhile; ask for a new link")
        now = await users.by_id(conn, user["id"])
        assert now is not None, "the users row is locked by the password change of this transaction"
    response = json({"user": users.full(now)})
    set_cookie(request, response, session_id)
    response.background = BackgroundTask(
        after_commit, st, Written(None, sessions_ended=[SessionsEnded(now["id"], before=epoch)]))
    return response


async def get_preferences(request: Request) -> Response:
    st = state(request)
    user = await auth.require_user(request, st)
    return json({"preferences": store.preferences(user)})


async def set_preferences(request: Request) -> Response:
    st, user, body, _ = await writing(request, PreferencesChange, bucket="preferences")
    changes = {k: v for k in ("email_notifications", "digest") if (v := getattr(body, k)) is not None}
    return json({"preferences": await store.set_preferences(st.pool, user["id"], changes)})


ONE_CLICK = "One-Click"
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def one_click(request: Request) -> str | None:
    """The List-Unsubscribe field of an RFC 8058 one-click POST (urlencoded, or multipart as the RFC
    prefers), read within the usual body cap; 415 for any other body type."""
    ctype = request.headers.get("content-type", "")
    kind = ctype.split(";")[0].strip().lower()
    if kind not in FORMS:
        raise UnsupportedMediaType("Send the form List-Unsubscribe=One-Click (RFC 8058)")
    body = await read_body(request)
    if kind == FORMS[0]:
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get("List-Unsubscribe", [])
        return values[0] if len(values) == 1 else None
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
    for part in msg.iter_parts() if msg.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
            payload = part.get_payload(decode=True)
            return payload.decode("latin-1").strip() if isinstance(payload, bytes) else None
    return None


async def unsubscribe(request: Request) -> Response:
    """POST /unsubscribe?token=T with the form List-Unsubscribe=One-Click (CONTRACT "Unsubscribe"): no session,
    no JSON, no Origin check (a mail provider sends it); the token alone, once. A GET of the same URL is the
    page (server/app.py), which changes nothing."""
    st = state(request)
    await limit(st, f"token:ip:{auth.client_key(request, st.settings)}", st.settings.limits.token_per_ip)
    tokens = request.query_params.getlist("token")
    if len(tokens) != 1 or not tokens[0] or len(tokens[0]) > 200:
        raise BadRequest("The link lost its token", code="bad_parameter", field="token")
    if await one_click(request) != ONE_CLICK:
        raise Invalid("Send the form body List-Unsubscribe=One-Click", field="List-Unsubscribe")
    prefs = await store.unsubscribe(st.pool, st.settings.secret, tokens[0])
    if prefs is None:
        raise Invalid("This link is not valid: it was used already, or is not one of ours", field="token")
    return json({"unsubscribed": True, "preferences": prefs})
