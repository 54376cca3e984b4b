"""Single sign-on over HTTP (CONTRACT "Single sign-on", docs/api.md "Single sign-on"): GET /auth/oidc/login
redirects to the provider, GET /auth/oidc/callback signs the person in (server/oidc.py checks everything the
provider says). Between the two, state, nonce, PKCE verifier and `next` live in a signed, 10-minute,
HttpOnly cookie scoped to /auth/oidc, used once.

Who the person is: the account linked to the provider's (issuer, subject); else, when the provider says the
address is verified and it is an account's verified address, that account (linked from then on); else a new
account, its username made from preferred_username (a number added until it is free), no password.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import asyncpg
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import auth, limits
from ..db import transaction
from ..errors import Conflict, Forbidden, NotFound
from ..oidc import Failed, Login, Provider
from ..store import identities, sessions, users
from ..wire import iso
from .accounts import set_cookie
from .common import json, limit, state
from .inputs import query
from .pages import base_url

log = logging.getLogger(__name__)

COOKIE = "parley_oidc"
COOKIE_PATH = "/auth/oidc"
LOGIN_MAX_AGE = 600  # seconds from the login redirect to the callback


def provider(request: Request) -> Provider:
    found = state(request).oidc
    if not found.enabled:
        raise NotFound("Single sign-on is not set up here")
    return found


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(state(request).settings.secret, salt="parley.oidc")


def _redirect_uri(request: Request) -> str:
    return f"{base_url(request)}/auth/oidc/callback"


def _safe_next(raw: str | None) -> str:
    """A path on this site to go to afterwards ("/" unless `next` is one: never another site)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw or len(raw) > 2000:
        return "/"
    parts = urlsplit(raw)
    return raw if not parts.scheme and not parts.netloc else "/"


async def config(request: Request) -> Response:
    """GET /auth/oidc/config: what the page needs for its button; name and login_url null when single sign-on is
    off (200 either way: the sign-in page asks on every site)."""
    settings = state(request).settings
    if settings.oidc_issuer is None:
        return json({"name": None, "login_url": None, "sso_only": False})
    host = urlsplit(settings.oidc_issuer).hostname or settings.oidc_issuer
    return json({"name": host, "login_url": "/auth/oidc/login", "sso_only": settings.sso_only})


async def login(request: Request) -> Response:
    """GET /auth/oidc/login?next=: a 302 to the provider's authorization endpoint."""
    p = provider(request)
    try:
        url, started = await p.login_url(_redirect_uri(request), _safe_next(query(request, "next")))
    except Failed as exc:
        log.warning("single sign-on: %s", exc)
        raise Forbidden("The sign-in provider cannot be reached or is misconfigured", code="oidc_failed") from None
    response = RedirectResponse(url, status_code=302)
    value = _serializer(request).dumps([started.state, started.nonce, started.verifier, started.next])
    response.set_cookie(COOKIE, value, max_age=LOGIN_MAX_AGE, path=COOKIE_PATH, httponly=True, samesite="lax",
                        secure=auth.scheme(request, state(request).settings) == "https")
    response.headers["cache-control"] = "no-store"
    return response


def _refused(why: str) -> Forbidden:
    log.info("single sign-on refused: %s", why)
    return Forbidden("The sign-in could not be completed: start again", code="oidc_failed")


async def callback(request: Request) -> Response:
    """GET /auth/oidc/callback?code=&state=: the provider sends the person back; they are signed in (303 to
    `next`) or refused (403, nothing made)."""
    st = state(request)
    p = provider(request)
    await limit(st, f"signin:ip:{auth.client_key(request, st.settings)}", st.settings.limits.signin_per_ip)
    try:
        saved = _serializer(request).loads(request.cookies.get(COOKIE, ""), max_age=LOGIN_MAX_AGE)
        started = Login(*saved)
    except (BadSignature, TypeError, ValueError):
        raise _refused("no login in progress (cookie missing, expired or forged)") from None
    if query(request, "error") is not None:
        raise _refused(f"the provider answered {query(request, 'error')}")
    code, given_state = query(request, "code"), query(request, "state")
    if not code or len(code) > 2000 or given_state != started.state:
        raise _refused("wrong state or no code")
    try:
        claims = await p.finish(_redirect_uri(request), started, code)
    except Failed as exc:
        raise _refused(str(exc)) from None
    row = await _account(st.pool, p.issuer, claims)
    if users.suspended(row):
        raise Forbidden(f"This account is suspended until {iso(row['suspended_until'])}", code="suspended")
    session_id = st.cookies.new_session_id()
    if not await sessions.create(st.pool, session_id, row["id"], row["credential_epoch"]):
        raise _refused("the account changed meanwhile")
    response = RedirectResponse(started.next, status_code=303)
    set_cookie(request, response, session_id)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")
    response.headers["cache-control"] = "no-store"
    return response


async def _account(pool: asyncpg.Pool, issuer: str, claims: dict[str, object]) -> asyncpg.Record:
    subject = str(claims["sub"])
    found = await identities.user_of(pool, issuer, subject)
    if found is not None:
        return found
    email = claims.get("email")
    verified = claims.get("email_verified") is True and isinstance(email, str) and 3 <= len(email) <= limits.EMAIL_MAX
    async with transaction(pool) as conn:
        try:
            linked = await identities.by_verified_email(conn, email) if verified else None  # type: ignore[arg-type]
            if linked is not None:
                await identities.link(conn, issuer, subject, linked["id"])
                return linked
            preferred = claims.get("preferred_username")
            base = identities.username_base(preferred if isinstance(preferred, str) else None,
                                            email if isinstance(email, str) else None)
            name = claims.get("name")
            display = name.strip()[: limits.DISPLAY_NAME_MAX] if isinstance(name, str) and name.strip() else base
            if await users.moderator_copied(conn, display) is not None:  # as at sign-up (docs/security.md)
                display = base
            row = await identities.create_user(conn, base, display, email if verified else None)  # type: ignore[arg-type]
            await identities.link(conn, issuer, subject, row["id"])
            return row
        except asyncpg.UniqueViolationError:  # the same person signing in twice at once: the other one won
            raise Conflict("This sign-in is already being completed: try again", code="oidc_conflict") from None
