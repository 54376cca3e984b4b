"""Passwords, sessions, the Origin allow-list and who may do what."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, Signer
from starlette.requests import HTTPConnection

from . import metrics
from .config import Settings
from .errors import Forbidden, Unauthorized
from .sessioncache import Guard, SessionCache
from .store import apikeys, sessions

COOKIE = "parley_session"
# Where a request authenticated by an API key keeps (key id, scopes) in its ASGI scope (session_of sets it).
API_KEY = "parley.api_key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~30-60 ms here, so a sign-in
# storm cannot starve a 2-core server, still far beyond GPU-friendly hashing. Old hashes with other
# parameters keep verifying (argon2 reads them from the hash); check_needs_rehash() upgrades them at the next
# sign-in. PARLEY_PASSWORD_HASH_MEMORY_KIB changes the memory (use_settings): tests only.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Compared against when a username does not exist, so a miss costs as much as a hit: the hash of a throw-away
# password at _hasher's parameters, written out rather than hashed at import, which cost every process start
# ~40 ms of CPU (tests/test_startup.py checks the parameters still match _hasher's).
_DUMMY_HASH = "$argon2id$v=19$m=19456,t=2,p=1$PcPXh9AkL8+2E/I40YO7WQ$maoQLyWLEKDX/4T142ohlCgrJu0Ikcwgwx9bpygIgZw"
_dummy = _DUMMY_HASH


def use_settings(settings: Settings) -> None:
    """Hash new passwords with the memory PARLEY_PASSWORD_HASH_MEMORY_KIB says (once, at start: the server and
    the CLI's user commands). Below OWASP's minimum a warning is logged: that is for test suites."""
    global _hasher, _dummy
    kib = settings.password_hash_memory_kib
    if kib == _hasher.memory_cost:
        return
    _hasher = PasswordHasher(time_cost=2, memory_cost=kib, parallelism=1)
    _dummy = _hasher.hash(secrets.token_urlsafe(16))  # a miss still costs what a hit does
    if kib < 19456:
        logging.getLogger("parley").warning(
            "PARLEY_PASSWORD_HASH_MEMORY_KIB=%d is below OWASP's minimum for argon2id (19456): new password "
            "hashes are cheap to guess. Use it for tests only.", kib)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


class Cookies:
    """Signs session ids for the cookie; the id itself is random and only valid while its row exists."""

    def __init__(self, settings: Settings) -> None:
        self.signer = Signer(settings.secret, salt="parley.session")
        self.settings = settings

    def new_session_id(self) -> str:
        return secrets.token_urlsafe(32)

    def dump(self, session_id: str) -> str:
        return self.signer.sign(session_id).decode()

    def load(self, raw: str | None) -> str | None:
        if not raw or len(raw) > 200:
            return None
        try:
            return self.signer.unsign(raw).decode()
        except BadSignature:
            return None


def client_ip(conn: HTTPConnection, settings: Settings) -> str:
    """The peer address, or the X-Forwarded-For client when the peer is a trusted proxy."""
    peer = conn.client.host if conn.client else "unknown"
    if settings.trusted_proxies and _trusted(peer, settings):
        forwarded = conn.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        # Walk from the nearest hop back, skipping our own proxies.
        for hop in reversed(hops):
            if not _trusted(hop, settings):
                return hop
    return peer


def address_key(addr: str) -> str:
    """The one key every per-address limit uses for a client address: an IPv4 address as it is, an IPv6
    address its /64 (one subscriber, household or VPS gets a whole /64 and picks any address in it, so a
    full address would give them 2^64 fresh buckets), an IPv4-mapped IPv6 address (::ffff:a.b.c.d, a
    dual-stack socket's view of an IPv4 client) the IPv4 address. Anything else (no peer, an odd hop from
    a trusted proxy) is its own key, cut to 64 characters."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def client_key(conn: HTTPConnection, settings: Settings) -> str:
    """The rate-limit key of this request's or socket's client: address_key(client_ip(...))."""
    return address_key(client_ip(conn, settings))


def _trusted(addr: str, settings: Settings) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in settings.trusted_proxies)


def scheme(conn: HTTPConnection, settings: Settings) -> str:
    peer = conn.client.host if conn.client else ""
    if settings.trusted_proxies and _trusted(peer, settings):
        proto = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            return proto
    return "https" if conn.url.scheme in ("https", "wss") else "http"


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header ("" for a malformed one), None without one."""
    value = conn.headers.get("authorization")
    if value is None:
        return None
    scheme_, _, token = value.strip().partition(" ")
    return token.strip() if scheme_.lower() == "bearer" else ""


def origin_allowed(conn: HTTPConnection, settings: Settings) -> bool:
    """No Origin header (curl, same-origin GET) is fine; a present one must be allowed. A request that carries an
    API key needs no allowed Origin: it is authenticated by the key alone, never by the cookie a browser adds by
    itself (session_of), so another site cannot make a browser send it (a cross-origin Authorization header
    needs a CORS preflight, which this server never answers)."""
    origin = conn.headers.get("origin")
    if origin is None or bearer_token(conn) is not None:
        return True
    origin = origin.lower()
    if settings.allowed_origins:
        return origin in settings.allowed_origins
    host = conn.headers.get("host", "").lower()
    return origin == f"{scheme(conn, settings)}://{host}"


def check_origin(conn: HTTPConnection, settings: Settings) -> None:
    if not origin_allowed(conn, settings):
        raise Forbidden("This origin may not change anything here", code="bad_origin")


class SessionState(Protocol):
    """What signing in needs of the app's state (state.AppState has it; auth does not import state, which
    imports auth for Cookies)."""

    @property
    def cookies(self) -> Cookies: ...

    @property
    def pool(self) -> asyncpg.Pool: ...

    @property
    def settings(self) -> Settings: ...


async def session_of(conn: HTTPConnection, state: SessionState,
                     acquire: Callable[[], AbstractAsyncContextManager[Any]] | None = None
                     ) -> tuple[str, asyncpg.Record] | tuple[None, None]:
    """The live session of this request or socket, as (session id, user), or (None, None) for a guest.

    `acquire`: where to get a connection, when not straight from the pool (the live path's bounded
    wait, Hub.acquire: in a reconnect storm a handshake must not queue behind the pool for ever).

    With an `Authorization: Bearer` header the API key alone decides, never the cookie: over HTTP an unknown or
    deleted key is 401, and a `read` key is 403 on a method that changes state; a socket with a bad key is a
    guest. The key's token stands for the session id (its hash is the socket's session key, store/apikeys.py)."""
    token = bearer_token(conn)
    if token is not None:
        return await _key_session(conn, state, token, acquire)
    sid = state.cookies.load(conn.cookies.get(COOKIE))
    if sid is None:
        return None, None
    if acquire is None:
        row = await sessions.user_for(state.pool, sid, state.settings.session_idle_days)
    else:
        async with acquire() as db:
            row = await sessions.user_for(db, sid, state.settings.session_idle_days)
    return (sid, row) if row is not None else (None, None)


async def _key_session(conn: HTTPConnection, state: SessionState, token: str,
                       acquire: Callable[[], AbstractAsyncContextManager[Any]] | None
                       ) -> tuple[str, asyncpg.Record] | tuple[None, None]:
    http = conn.scope["type"] == "http"
    row = None
    if token and len(token) <= 200:
        if acquire is None:
            row = await apikeys.user_for(state.pool, token)
        else:
            async with acquire() as db:
                row = await apikeys.user_for(db, token)
    if row is None:
        if http:
            raise Unauthorized("This API key is unknown or was deleted", code="bad_api_key")
        return None, None
    conn.scope[API_KEY] = (row["api_key_id"], list(row["api_key_scopes"]))
    if http and conn.scope["method"] not in SAFE_METHODS and "write" not in row["api_key_scopes"]:
        raise Forbidden("This API key may only read", code="read_only_key")
    return token, row


def by_api_key(conn: HTTPConnection) -> bool:
    """Whether this request was authenticated by an API key (after session_of)."""
    return API_KEY in conn.scope


async def current_user(conn: HTTPConnection, state: SessionState) -> asyncpg.Record | None:
    """The signed-in user of this request or socket, or None for a guest."""
    return (await session_of(conn, state))[1]


async def require_user(conn: HTTPConnection, state: SessionState) -> asyncpg.Record:
    user = await current_user(conn, state)
    if user is None:
        raise Unauthorized("Sign in first")
    return user


async def require_user_cached(conn: HTTPConnection, state: SessionState,
                              cache: SessionCache) -> tuple[asyncpg.Record, Guard | None]:
    """require_user for the reply path: the user from the session cache when the cookie is there, else looked up
    (with its users row's version) and kept; answers the Guard its write must be checked against
    (server/sessioncache.py), or None for an API key or with the cache off (looked up as everywhere else)."""
    raw = conn.cookies.get(COOKIE)
    if not cache.enabled or raw is None or bearer_token(conn) is not None:
        return await require_user(conn, state), None
    entry = cache.get(raw)
    if entry is not None:
        metrics.SESSION_CACHE.labels("hit").inc()
        return entry.user, entry.guard
    metrics.SESSION_CACHE.labels("miss").inc()
    sid = state.cookies.load(raw)
    row = None if sid is None else await sessions.user_for(state.pool, sid, state.settings.session_idle_days,
                                                           versioned=True)
    if sid is None or row is None:
        raise Unauthorized("Sign in first")
    guard = Guard(sessions.key(sid), row["row_version"], state.settings.session_idle_days * 86400)
    cache.put(raw, sid, row, guard)
    return row, guard


def refuse_passwords(settings: Settings) -> None:
    """PARLEY_SSO_ONLY: password sign-up, sign-in and reset are off (people sign in through the provider)."""
    if settings.sso_only:
        raise Forbidden("This site signs people in through its single sign-on provider only", code="sso_only")


def require_moderator(user: asyncpg.Record) -> None:
    if not user["is_moderator"]:
        raise Forbidden("Only a moderator can do this")
