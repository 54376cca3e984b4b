"""Sign up, sign in, sign out, who am I, change password."""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, limits
from ..db import transaction
from ..effects import after_commit
from ..errors import Conflict, Forbidden, Invalid, RateLimited, Unauthorized
from ..fields import NO_NUL, Shows, Text, whole
from ..state import AppState
from ..store import SessionsEnded, Written, sessions, users
from ..store import addresses as email_store
from ..wire import iso
from .common import json, limit, no_content, state
from .inputs import parse

log = logging.getLogger(__name__)

USERNAME = users.USERNAME
# The contract's limits (CONTRACT "Limits"), declared here once: parse() enforces them, openapi.py publishes them.
Username = Annotated[str, msgspec.Meta(pattern=whole(USERNAME),
                                       description=f"{limits.USERNAME_MIN}–{limits.USERNAME_MAX} of A-Z a-z 0-9 _ . -")]
# Any password up to PASSWORD_SIGN_IN_MAX is checked (a longer one is never right and only costs hashing time)…
Password = Annotated[str, msgspec.Meta(max_length=limits.PASSWORD_SIGN_IN_MAX, pattern=NO_NUL)]
# …and a new one is PASSWORD_MIN–PASSWORD_MAX characters, kept as typed (never trimmed), and not blank once
# trimmed or only invisible characters (Shows).
NewPassword = Annotated[str, msgspec.Meta(
    min_length=limits.PASSWORD_MIN, max_length=limits.PASSWORD_MAX, pattern=NO_NUL,
    extra_json_schema={"allOf": [{"$ref": "#/components/schemas/Shows"}],
                       "description": f"{limits.PASSWORD_MIN}–{limits.PASSWORD_MAX} characters, "
                                      "not only spaces or invisible ones"}), Shows()]
DisplayName = Annotated[str, Text(1, limits.DISPLAY_NAME_MAX, refuse="name")]
# An address as typed: normalize() then decides (email-validator).
Email = Annotated[str, msgspec.Meta(max_length=limits.EMAIL_MAX, pattern=NO_NUL, description="An e-mail address")]


def normalize(address: str) -> str:
    """The address as stored: checked by email-validator (syntax only, no DNS), its domain lower-cased and
    in ASCII (IDNA); 422 field email when it is not an address. Internationalized local parts are refused
    (they need SMTPUTF8 all the way)."""
    # Imported at the first address, not with this module: email-validator compiles its regexes at import, ~25 ms
    # of CPU that every start paid though many processes never see an address.
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False).ascii_email or ""
    except EmailNotValidError as exc:
        raise Invalid(f"email is not a valid address: {exc}", field="email") from None


async def mail_limits(st: AppState, request: Request, address: str) -> None:
    """The buckets of verification and reset mails: per address mailed (any case) and per client address."""
    await limit(st, f"mail:ip:{auth.client_key(request, st.settings)}", st.settings.limits.mail_per_ip)
    await limit(st, f"mail:to:{address.lower()}", st.settings.limits.mail_per_address)


class SignUp(msgspec.Struct):
    username: Username
    password: NewPassword
    display_name: DisplayName | None = None
    email: Email | None = None


class SignIn(msgspec.Struct):
    username: Annotated[str, msgspec.Meta(pattern=NO_NUL)]
    password: Password


class PasswordChange(msgspec.Struct):
    old_password: Password
    new_password: NewPassword


def set_cookie(request: Request, response: Response, session_id: str) -> None:
    st = state(request)
    response.set_cookie(
        auth.COOKIE, st.cookies.dump(session_id), max_age=int(st.settings.session_idle_days * 86400),
        httponly=True, samesite="lax", path="/",
        secure=auth.scheme(request, st.settings) == "https")


async def sign_up(request: Request) -> Response:
    st = state(request)
    auth.check_origin(request, st.settings)
    auth.refuse_passwords(st.settings)
    body = await parse(request, SignUp)
    display = body.display_name if body.display_name is not None else body.username
    email = normalize(body.email) if body.email is not None else None
    address = auth.client_key(request, st.settings)
    # Per address an hour and a day: a suspended member cannot come straight back as a stream of new accounts.
    await limit(st, f"signup:ip:{address}", st.settings.limits.signup_per_ip)
    await limit(st, f"signup:day:{address}", st.settings.limits.signup_per_ip_day)
    if email is not None:
        await mail_limits(st, request, email)
    if await users.moderator_copied(st.pool, display) is not None:  # a copy of a moderator's name (docs/security.md)
        raise Conflict("That name is a moderator's: choose another display name", code="display_name_taken",
                       field="display_name" if body.display_name is not None else "username")
    password_hash = await auth.hash_password(body.password)
    session_id = st.cookies.new_session_id()
    written: Written[None] = Written(None)
    async with transaction(st.pool) as conn:
        row = await users.create(conn, body.username, display, password_hash)
        # The user is not visible to anyone else before COMMIT, so nothing can change its epoch meanwhile.
        await sessions.create(conn, session_id, row["id"], row["credential_epoch"])
        if email is not None:
            row = await email_store.set_address(conn, row["id"], email)
            written = await email_store.send_verification(conn, st.mailer.composer, row)
    await after_commit(st, written)
    response = json({"user": users.full(row)}, 201)
    set_cookie(request, response, session_id)
    return response


class Guessing:
    """The sign-in failure buckets of one (address, account) pair (docs/security.md, "Password guessing without
    lockout").

    Failures are counted per (address, account), per address (any account) and per account (any address).
    The first two refuse outright: a stranger's failures never touch the owner's own pair or address. The
    account's bucket only narrows: while it is empty (many addresses guessing one account), an address may
    still try only if it has no recent failure on this account (its pair bucket is full), so the owner with
    the right password from any other address always gets in, and every guessing address is slowed to one
    try per refill of a pair token."""

    def __init__(self, st: AppState, address: str, account: str) -> None:
        lim = st.settings.limits
        self.st = st
        self.pair = (f"signin:fail:pair:{address}|{account}", lim.signin_failures_per_address_account)
        self.address = (f"signin:fail:ip:{address}", lim.signin_failures_per_address)
        self.account = (f"signin:fail:user:{account}", lim.signin_failures_per_account)

    async def check(self) -> None:
        """429 before any hashing when this pair or address has failed too often, or the account is being
        guessed from many addresses and this one has failed on it lately. Probes: they take nothing."""
        limiter = self.st.limiter
        await limit(self.st, *self.pair, cost=0, need=1)
        await limit(self.st, *self.address, cost=0, need=1)
        busy = await limiter.hit(*self.account, cost=0, need=1)
        if busy > 0:
            clean = await limiter.hit(*self.pair, cost=0, need=self.pair[1][0])
            if clean > 0:
                raise RateLimited(min(busy, clean))

    async def failed(self) -> None:
        for key, rule in (self.pair, self.address, self.account):
            await self.st.limiter.hit(key, rule)


async def sign_in(request: Request) -> Response:
    st = state(request)
    auth.check_origin(request, st.settings)
    auth.refuse_passwords(st.settings)
    body = await parse(request, SignIn)
    address = auth.client_key(request, st.settings)
    await limit(st, f"signin:ip:{address}", st.settings.limits.signin_per_ip)
    guessing = Guessing(st, address, users.canonical(body.username))
    await guessing.check()
    row = await users.by_username(st.pool, body.username)
    if not await auth.verify_password(row["password_hash"] if row else None, body.password) or row is None:
        await guessing.failed()
        raise Unauthorized("Wrong username or password", code="bad_credentials")
    if users.suspended(row):
        raise Forbidden(f"This account is suspended until {iso(row['suspended_until'])}", code="suspended")
    if auth.needs_rehash(row["password_hash"]):
        await users.rehash(st.pool, row["id"], row["password_hash"], await auth.hash_password(body.password))
    # A fresh id at every sign-in: a session id planted before sign-in is never promoted (no fixation).
    old = st.cookies.load(request.cookies.get(auth.COOKIE))
    session_id = st.cookies.new_session_id()
    async with transaction(st.pool) as conn:
        # Made only at the epoch the password was checked against (a password change or suspension that
        # committed during the ~50 ms of hashing raised it): no racing sign-in outlives a change.
        made = await sessions.create(conn, session_id, row["id"], row["credential_epoch"])
        if made and old is not None:
            await sessions.revoke(conn, old)  # after create: users before sessions, the writers' lock order
    if not made:
        now = await users.by_id(st.pool, row["id"])
        if now is not None and users.suspended(now):
            raise Forbidden(f"This account is suspended until {iso(now['suspended_until'])}", code="suspended")
        raise Unauthorized("Wrong username or password", code="bad_credentials")  # the password changed
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
    await after_commit(st, Written(None, sessions_ended=[SessionsEnded(user["id"], only=sessions.key(sid))]))
    response = no_content()
    response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="lax")
    return response


async def me(request: Request) -> Response:
    user = await auth.require_user(request, state(request))
    return json({"user": users.full(user)})


async def change_password(request: Request) -> Response:
    """PUT /api/me/password: every session of the user made before ends, this one included, and so does every
    socket opened with one of them (4001); the answer carries a new session's cookie."""
    st = state(request)
    auth.check_origin(request, st.settings)
    user = await auth.require_user(request, st)
    body = await parse(request, PasswordChange)
    # Its own bucket, per user (it takes the session to get here): strangers' failed sign-ins on the account
    # never make it 429. A wrong old_password takes from it like any try.
    await limit(st, f"password:{user['id']}", st.settings.limits.password_change_per_user)
    if not await auth.verify_password(user["password_hash"], body.old_password):
        # 403, not 422: the body is well formed; proving who you are failed (docs/api.md).
        raise Forbidden("The current password is wrong", code="wrong_password", field="old_password")
    new_hash = await auth.hash_password(body.new_password)
    session_id = st.cookies.new_session_id()
    async with transaction(st.pool) as conn:
        # Only at the epoch this request's session was made at: a change or suspension that committed
        # meanwhile ended that session, and it may not change anything any more.
        epoch = await users.change_password(conn, user["id"], user["credential_epoch"], new_hash)
        if epoch is None:
            raise Unauthorized("Your session ended meanwhile; sign in again")
        await sessions.revoke_all(conn, user["id"])
        await sessions.create(conn, session_id, user["id"], epoch)
    response = json({"user": users.full(user)})
    set_cookie(request, response, session_id)
    # Every socket of a session made before closes (4001), the changer's too: its page then asks /api/me and
    # reconnects with the new cookie (web/js/app.js, sessionClosed). Sent once the answer is out, so that
    # the browser holds the new cookie when the close arrives (for its other tabs as well).
    response.background = BackgroundTask(
        after_commit, st, Written(None, sessions_ended=[SessionsEnded(user["id"], before=epoch)]))
    return response
