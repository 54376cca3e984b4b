"""create_app(settings): routes, middleware, error handlers and the lifespan. No business logic."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

import asyncpg
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router, get_route_path
from starlette.staticfiles import StaticFiles

from . import auth, config, db, gcpolicy, housekeeping, limits, metrics, openapi
from .api import (
    accounts,
    apikeys,
    drafts,
    feeds,
    following,
    forum,
    leaving,
    mail,
    mentions,
    moderation,
    notifications,
    pages,
    preview,
    profiles,
    search,
    sso,
    tags,
    uploads,
    webhooks,
)
from .api.common import json
from .auth import Cookies
from .errors import ApiError, Unavailable
from .feedpublisher import FeedPublisher
from .live import sse, ws
from .live.broker import Broker, MemoryBroker, RedisBroker
from .live.channels import Channels
from .live.cluster import RedisClient, RedisClusterBroker, cluster_client
from .live.hub import Hub
from .live.presence import Presence
from .oidc import Provider
from .outbox.mailer import Mailer
from .outbox.webhooks import Deliverer
from .pagecache import PageCache
from .ratelimit import Limiter, MemoryLimiter, RedisLimiter
from .render import Renderer
from .replicas import COOKIE as REPLICA_COOKIE
from .replicas import Replicas
from .sessioncache import SessionCache
from .spamcheck import SpamCheck
from .state import AppState
from .store import meta
from .store.similar import Vocabulary
from .uploads.storage import open_storage
from .uploads.workers import ImageWorkers

log = logging.getLogger("parley")
access_log = logging.getLogger("parley.access")

# The page ships inside the package (package data), wherever it is installed.
WEB = Path(str(resources.files("server.web")))
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json(exc.body(), exc.status, exc.headers)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Routes are declared one per method, and Starlette's own
    405 names only the first route that matched the path, so the Allow header is rebuilt from all of them."""
    scope = {**request.scope, "method": "GET"}
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


# Paths that are never the page: an unknown one of these answers JSON, any other is a page URL.
NOT_PAGES = re.compile(r"/(api|static|uploads|ws|healthz|readyz|metrics|feeds)(/|\Z)")


def slash_redirect(request: Request) -> Response | None:
    """Starlette's redirect_slashes, with a relative Location: a path no route serves, that one does with its
    trailing slash added or removed, is 307 to that path (and the same query). Starlette builds an absolute URL
    from the Host header, which anyone can forge (Location: http://evil.example/static/); it is turned off."""
    scope = request.scope
    path = scope["path"]
    routes = request.app.routes
    if path == "/" or any(route.matches(scope)[0] is not Match.NONE for route in routes):
        return None  # a route serves this path: its own 404 (a missing static file) stands
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    if not other.startswith("/") or other[1:2] in ("/", "\\"):
        return None  # never a Location a browser would read as another host (//host, /\host)
    if not any(route.matches({**scope, "path": other})[0] is not Match.NONE for route in routes):
        return None
    raw = scope.get("raw_path")  # the path as the client wrote it (its own percent-encoding kept)
    if raw:
        raw = raw.split(b"?", 1)[0]
        raw = raw.rstrip(b"/") if path.endswith("/") else raw + b"/"
        if unquote_to_bytes(raw) != other.encode():  # e.g. a trailing %2F: that slash is not the one removed
            raw = None
    location = (quote_from_bytes(raw, safe="/:@!$&'()*+,;=-._~%") if raw  # already encoded: keep its escapes
                else quote_from_bytes(other.encode(), safe="/:@!$&'()*+,;=-._~"))
    query = quote_from_bytes(scope.get("query_string", b""), safe="/:@!$&'()*+,;=-._~%?")
    return Response(status_code=307, headers={"location": location + ("?" + query if query else "")})


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and (redirect := slash_redirect(request)) is not None:
        return redirect
    if exc.status_code == 404 and request.method in ("GET", "HEAD") and not NOT_PAGES.match(request.url.path):
        # A page URL a person typed (or an old link): the page itself shows "Page not found".
        return FileResponse(WEB / "index.html", status_code=404, headers={"cache-control": "no-cache"})
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = {404: "Nothing here", 405: "Method not allowed"}.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return json({"error": {"code": codes.get(exc.status_code, "http_error"), "message": message}},
                exc.status_code, headers)


def _unavailable(exc: Exception) -> bool:
    if isinstance(exc, db.UNAVAILABLE):
        return True
    # Class 08 connection exception, 57 operator intervention (e.g. terminated), 53 insufficient resources.
    return isinstance(exc, asyncpg.PostgresError) and str(getattr(exc, "sqlstate", ""))[:2] in ("08", "57", "53")


async def db_error(request: Request, exc: Exception) -> Response:
    if _unavailable(exc):
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
        err = Unavailable("The database is unavailable; try again shortly")
        return json(err.body(), 503, {"Retry-After": "2"})
    return await server_error(request, exc)


async def server_error(request: Request, exc: Exception) -> Response:
    log.error("bug: unhandled error for %s %s", request.method, request.url.path, exc_info=exc)
    return json({"error": {"code": "internal", "message": "Something went wrong on our side"}}, 500)


LIMITS_JS = limits.page_module()


async def limits_js(request: Request) -> Response:
    """/static/js/limits.js: the page's copy of server/limits.py, generated, so no limit is typed twice."""
    return Response(LIMITS_JS, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})


async def healthz(request: Request) -> Response:
    return json({"status": "ok"})


async def readyz(request: Request) -> Response:
    st: AppState = request.app.state.parley
    problems = []
    try:
        await meta.ping(st.pool, timeout=2)
    except Exception as exc:
        problems.append(f"database: {exc.__class__.__name__}")
    if not st.broker.healthy:
        problems.append(f"broker ({st.broker.name}): not connected")
    if st.shutting_down:
        problems.append("shutting down")
    if problems:
        return json({"status": "unavailable", "problems": problems}, 503)
    return json({"status": "ok", "broker": st.broker.name})


def metrics_allowed(request: Request, settings: config.Settings) -> bool:
    """Whether the client (auth.client_ip: the peer, or the X-Forwarded-For client behind a trusted proxy) is
    in PARLEY_METRICS_ALLOW. An IPv4 address mapped into IPv6 counts as the IPv4 address."""
    try:
        ip = ipaddress.ip_address(auth.client_ip(request, settings))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in settings.metrics_allow)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text to PARLEY_METRICS_ALLOW only; anyone else gets the 404 of a path that does not exist
    (per-route activity — suspensions, flags, sign-ins — is not for the public; docs/operations.md)."""
    if not metrics_allowed(request, request.app.state.settings):
        raise HTTPException(404)
    body, ctype = metrics.render()
    return Response(body, media_type=ctype)


async def openapi_endpoint(request: Request) -> Response:
    # Built on the first request, off the event loop: the build scans Unicode for the text rules' character
    # classes (~0.25 s of CPU), which a start does not pay for a document most processes are never asked for.
    return Response(await asyncio.to_thread(openapi.encoded), media_type="application/json")


async def page(request: Request) -> Response:
    return FileResponse(WEB / "index.html", headers={"cache-control": "no-cache"})


async def unsubscribe_page(request: Request) -> Response:
    """GET of a mail's one-click unsubscribe URL: the page (its button sends the POST); it changes nothing, so
    a link scanner that opens it unsubscribes nobody. Part of the API (the document lists it beside the POST)."""
    return await page(request)


def is_page(endpoint: Any) -> bool:
    """Whether a route's endpoint answers the page (HTML, robots, sitemaps) or a feed rather than an API operation."""
    return endpoint is page or endpoint in pages.PAGES or endpoint in feeds.FEEDS


def routes() -> list[Any]:
    return [
        Route("/api/users", accounts.sign_up, methods=["POST"]),
        Route("/api/users", mentions.search_users, methods=["GET"]),
        Route("/api/notifications", notifications.list_notifications, methods=["GET"]),
        Route("/api/notifications/read", notifications.mark_read, methods=["POST"]),
        Route("/api/threads/{id}/following", following.set_following, methods=["PUT"]),
        Route("/api/threads/{id}/read", following.set_read, methods=["PUT"]),
        Route("/api/session", accounts.sign_in, methods=["POST"]),
        Route("/api/session", accounts.sign_out, methods=["DELETE"]),
        Route("/api/me", accounts.me, methods=["GET"]),
        Route("/api/me", leaving.delete_me, methods=["DELETE"]),
        Route("/api/me/password", accounts.change_password, methods=["PUT"]),
        Route("/api/me/export", leaving.export, methods=["GET"]),
        Route("/api/webhooks", webhooks.create_webhook, methods=["POST"]),
        Route("/api/webhooks", webhooks.list_webhooks, methods=["GET"]),
        Route("/api/webhooks/{id}", webhooks.delete_webhook, methods=["DELETE"]),
        Route("/api/webhooks/{id}/deliveries", webhooks.list_deliveries, methods=["GET"]),
        Route("/api/me/api-keys", apikeys.list_keys, methods=["GET"]),
        Route("/api/me/api-keys", apikeys.create_key, methods=["POST"]),
        Route("/api/me/api-keys/{id}", apikeys.delete_key, methods=["DELETE"]),
        Route("/api/me/drafts", drafts.list_drafts, methods=["GET"]),
        Route("/api/me/drafts/{key}", drafts.put_draft, methods=["PUT"]),
        Route("/api/me/drafts/{key}", drafts.delete_draft, methods=["DELETE"]),
        Route("/api/me/email", mail.set_email, methods=["PUT"]),
        Route("/api/me/avatar", uploads.set_avatar, methods=["PUT"]),
        Route("/api/uploads", uploads.create_upload, methods=["POST"]),
        Route("/uploads/{name}", uploads.serve_upload, methods=["GET"]),
        Route("/api/me/preferences", mail.get_preferences, methods=["GET"]),
        Route("/api/me/preferences", mail.set_preferences, methods=["PUT"]),
        Route("/api/email/verify", mail.verify_email, methods=["POST"]),
        Route("/api/password-reset", mail.request_reset, methods=["POST"]),
        Route("/api/password-reset/confirm", mail.confirm_reset, methods=["POST"]),
        Route("/unsubscribe", mail.unsubscribe, methods=["POST"]),
        Route("/api/categories", forum.list_categories, methods=["GET"]),
        Route("/api/categories", forum.create_category, methods=["POST"]),
        Route("/api/categories/{slug}/threads", forum.list_threads, methods=["GET"]),
        Route("/api/threads", forum.list_threads, methods=["GET"]),
        Route("/api/threads", forum.create_thread, methods=["POST"]),
        Route("/api/threads/similar", tags.similar, methods=["GET"]),
        Route("/api/threads/similar", tags.SimilarOtherMethods()),  # every other method: 405, not thread "similar"
        Route("/api/threads/{id}", forum.get_thread, methods=["GET"]),
        Route("/api/threads/{id}", forum.update_thread, methods=["PATCH"]),
        Route("/api/threads/{id}/accepted", forum.set_accepted, methods=["PUT"]),
        Route("/api/threads/{id}/duplicate", forum.set_duplicate, methods=["PUT"]),
        Route("/api/tags", tags.list_tags, methods=["GET"]),
        Route("/api/tags/{name}/following", tags.set_tag_following, methods=["PUT"]),
        Route("/api/posts/{id}/bookmark", tags.set_bookmark, methods=["PUT"]),
        Route("/api/me/bookmarks", tags.list_bookmarks, methods=["GET"]),
        Route("/api/threads/{id}/posts", forum.create_post, methods=["POST"]),
        Route("/api/threads/{id}/events", forum.thread_events, methods=["GET"]),
        Route("/api/threads/{id}/presence", forum.thread_presence, methods=["GET"]),
        Route("/api/users/{username}", profiles.profile, methods=["GET"]),
        Route("/api/users/{username}/posts", profiles.user_posts, methods=["GET"]),
        Route("/api/users/{username}/reputation", profiles.reputation_ledger, methods=["GET"]),
        Route("/api/privileges", profiles.privilege_table, methods=["GET"]),
        Route("/api/pending", profiles.pending_posts, methods=["GET"]),
        Route("/api/search", search.search, methods=["GET"]),
        Route("/api/posts/{id}", profiles.permalink, methods=["GET"]),
        Route("/api/posts/{id}", forum.edit_post, methods=["PATCH"]),
        Route("/api/posts/{id}", forum.delete_post, methods=["DELETE"]),
        Route("/api/posts/{id}/revisions", forum.revisions, methods=["GET"]),
        Route("/api/posts/{id}/vote", forum.vote, methods=["PUT"]),
        Route("/api/posts/{id}/approval", forum.approve_post, methods=["PUT"]),
        Route("/api/posts/{id}/flags", moderation.create_flag, methods=["POST"]),
        Route("/api/flags", moderation.list_flags, methods=["GET"]),
        Route("/api/flags/{id}", moderation.update_flag, methods=["PUT"]),
        Route("/api/modlog", moderation.list_modlog, methods=["GET"]),
        Route("/api/users/{username}/suspension", moderation.suspend, methods=["PUT"]),
        Route("/api/users/{username}/silence", moderation.set_silence, methods=["PUT"]),
        Route("/api/users/{username}/ignored", forum.set_ignored, methods=["PUT"]),
        Route("/api/presence", forum.site_presence, methods=["GET"]),
        Route("/api/stream", sse.stream, methods=["GET"]),
        Route("/api/render", preview.render_preview, methods=["POST"]),
        Route("/api/openapi.json", openapi_endpoint, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/static/js/limits.js", limits_js, methods=["GET"]),
        Mount("/static", StaticFiles(directory=WEB, check_dir=False), name="static"),
        Route("/", page, methods=["GET"]),
        Route("/c/{rest:path}", pages.category_page, methods=["GET"]),
        Route("/t/{rest:path}", pages.thread_page, methods=["GET"]),
        Route("/u/{rest:path}", pages.profile_page, methods=["GET"]),
        Route("/robots.txt", pages.robots, methods=["GET"]),
        Route("/auth/oidc/config", sso.config, methods=["GET"]),
        Route("/auth/oidc/login", sso.login, methods=["GET"]),
        Route("/auth/oidc/callback", sso.callback, methods=["GET"]),
        Route("/feeds/latest.atom", feeds.latest, methods=["GET"]),
        Route("/feeds/c/{slug}.atom", feeds.category, methods=["GET"]),
        Route("/feeds/tag/{name}.atom", feeds.tag, methods=["GET"]),
        Route("/feeds/t/{id}.atom", feeds.thread, methods=["GET"]),
        Route("/feeds/u/{username}.atom", feeds.user, methods=["GET"]),
        Route("/sitemap.xml", pages.sitemap, methods=["GET"]),
        Route("/sitemaps/{n}.xml", pages.sitemap_part, methods=["GET"]),
        Route("/signin", page, methods=["GET"]),
        Route("/signup", page, methods=["GET"]),
        Route("/search", page, methods=["GET"]),
        Route("/settings", page, methods=["GET"]),
        Route("/review", page, methods=["GET"]),
        Route("/modlog", page, methods=["GET"]),
        Route("/forgot-password", page, methods=["GET"]),
        Route("/reset-password", page, methods=["GET"]),
        Route("/verify-email", page, methods=["GET"]),
        Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
    ]


class PrefixRouter(Router):
    """Starlette's Router, trying only the routes whose literal prefix the path has.

    Starlette tries every route's regex in turn; with Parley's hundred routes that was ~5 % of a reply's server CPU
    (bench/README.md, "Where a reply's server CPU goes"). A route's regex is anchored and its text up to the first
    `{` is literal, so no route whose literal prefix the path lacks can match it, fully or partly: the first full
    match among the others, in the same order, is the one Starlette would pick. Anything else (a method that does
    not match, a 404) goes through Starlette's own scan, unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        prefixed = [(_literal_prefix(r), r) for r in self.routes]
        # Candidates by the first two path segments the literal prefix fixes (every path the route matches has
        # them), then by the first alone, each list with the routes that fix fewer ("/api/{x}", "/{slug}", a Host
        # route) and in the routes' order: a superset of the routes that can match such a path.
        fixed = [_fixed_segments(prefix, route) for prefix, route in prefixed]
        self.by_two: dict[tuple[str, ...], list[tuple[str, BaseRoute]]] = {}
        self.by_one: dict[tuple[str, ...], list[tuple[str, BaseRoute]]] = {}
        for two in {segs for segs in fixed if len(segs) == 2}:
            self.by_two[two] = [p for p, segs in zip(prefixed, fixed) if segs == two[:len(segs)]]
        for one in {segs[:1] for segs in fixed if segs}:
            self.by_one[one] = [p for p, segs in zip(prefixed, fixed) if segs[:1] == one or not segs]
        self.anywhere = [p for p, segs in zip(prefixed, fixed) if not segs]

    def first_full(self, scope: Any) -> tuple[BaseRoute, Any] | None:
        """The first route, in order, that matches this request fully, and its child scope; None if none does."""
        path = get_route_path(scope)
        segs = tuple(path[1:].split("/", 2)[:2])
        candidates = self.by_two.get(segs[:2]) or self.by_one.get(segs[:1]) or self.anywhere
        for prefix, route in candidates:
            if path.startswith(prefix):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    return route, child_scope
        return None

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        found = self.first_full(scope) if scope["type"] in ("http", "websocket") else None
        if found is None:
            await super().app(scope, receive, send)
            return
        route, child_scope = found
        scope.setdefault("router", self)
        scope["route"] = route
        scope.update(child_scope)
        await route.handle(scope, receive, send)


def _fixed_segments(prefix: str, route: BaseRoute) -> tuple[str, ...]:
    """The whole path segments, at most two, that every path the route matches starts with: ("api", "threads")
    for /api/threads/{id}, ("t",) for /t/{id}, ("static",) for the /static mount, () for /{slug}, /u{x}, /."""
    if not prefix.startswith("/"):
        return ()
    parts = prefix[1:].split("/")
    if "{" in getattr(route, "path", "{"):
        parts = parts[:-1]  # cut by the `{`: not a whole segment
    fixed: list[str] = []
    for part in parts[:2]:
        if not part:
            break
        fixed.append(part)
    return tuple(fixed)


def _literal_prefix(route: BaseRoute) -> str:
    """The text every path a route matches starts with: its path up to the first `{` ("" when it has none to
    tell, e.g. a Host route)."""
    path = getattr(route, "path", None)
    return path.split("{", 1)[0] if isinstance(path, str) else ""


class Parley:
    """The outermost ASGI app: /ws goes straight to the live protocol (with uvicorn's own `send`,
    which the fast path needs), the rest through Starlette with headers, metrics and access logs."""

    def __init__(self, settings: config.Settings) -> None:
        self.settings = settings
        self.starlette = Starlette(
            routes=routes(),
            exception_handlers={ApiError: api_error, HTTPException: http_error, asyncpg.PostgresError: db_error,
                                asyncpg.InterfaceError: db_error, db.InternalClientError: db_error,
                                OSError: db_error, TimeoutError: db_error,
                                Exception: server_error},
            lifespan=self.lifespan,
        )
        self.starlette.router = PrefixRouter(self.starlette.router.routes, lifespan=self.lifespan)
        self.starlette.router.redirect_slashes = False  # http_error() redirects, with a relative Location
        self.starlette.state.settings = settings
        self.state: AppState | None = None

    @property
    def routes(self) -> list[Any]:
        return self.starlette.routes

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        settings = self.settings
        assert settings.database_url is not None, "DATABASE_URL is resolved by the CLI before the app starts"
        pool = await db.create_pool(settings.database_url, max_size=settings.db_pool_size,
                                    statement_cache=settings.db_statement_cache)
        # Everything this forum puts in Redis lives under its own namespace (live/channels.py).
        channels = Channels(f"parley:{await meta.deployment(pool)}")
        # Presence's keys and the rate limiter's buckets: a client of our own, not the broker's.
        redis: RedisClient | None = None
        if settings.redis_url and settings.redis_cluster:
            broker: Broker = RedisClusterBroker(settings.redis_url, settings.redis_ping_seconds)
            redis = cluster_client(settings.redis_url)
        elif settings.redis_url:
            broker = RedisBroker(settings.redis_url, settings.redis_ping_seconds)
            redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3,
                                            health_check_interval=10)
        else:
            broker = MemoryBroker()
        limiter: Limiter = (RedisLimiter(redis, settings.rate_limits_enabled, channels.namespace)
                            if redis is not None else MemoryLimiter(settings.rate_limits_enabled))
        hub = Hub(pool, broker, channels, session_idle_days=settings.session_idle_days,
                  history_events=settings.history_events, history_seconds=settings.history_seconds)
        presence = Presence(hub, redis, settings.presence_grace_seconds, settings.presence_lease_seconds,
                            channels, broker=broker)
        hub.listen(channels.presence, presence)
        renderer = Renderer(settings.render_workers, settings.render_budget_seconds,
                            on_waiting=metrics.RENDER_WAITING.set)
        await renderer.start()
        replicas = Replicas(pool, settings.database_replica_urls, settings.replica_max_lag_seconds,
                            pool_size=settings.db_pool_size, statement_cache=settings.db_statement_cache)
        await replicas.start()
        await hub.start()
        await presence.start()
        self.state = AppState(settings=settings, pool=pool, broker=broker, channels=channels, hub=hub,
                              presence=presence, limiter=limiter, cookies=Cookies(settings), renderer=renderer,
                              feed_publisher=FeedPublisher(pool, broker, channels), page_cache=PageCache(),
                              session_cache=SessionCache(settings.session_cache_size),
                              search_slots=asyncio.Semaphore(search.slots(settings)),
                              vocabulary=Vocabulary(),
                              storage=open_storage(settings.upload_store, settings.data_dir, settings.s3_endpoint,
                                                   settings.s3_access_key, settings.s3_secret_key,
                                                   settings.s3_region),
                              images=ImageWorkers(settings.render_workers),
                              mailer=Mailer(pool, settings, presence.online), webhooks=Deliverer(pool, settings),
                              oidc=Provider(settings), replicas=replicas,
                              spam_check=SpamCheck(settings.spam_check_url, settings.spam_check_timeout_seconds,
                                                   settings.public_url or ""))
        app.state.parley = self.state
        await self.state.mailer.start(self.state)
        self.state.webhooks.start()
        pruner = asyncio.create_task(housekeeping.loop(pool, settings, self.state.storage), name="housekeeping")
        socket_log = asyncio.create_task(self.state.socket_log.run(lambda: len(hub.conns)), name="socket-log")
        # Start-up's objects out of the full collections' walk (the write stall, server/gcpolicy.py).
        gcpolicy.freeze(settings.gc_freeze)
        try:
            yield
        finally:
            pruner.cancel()
            socket_log.cancel()
            self.state.socket_log.summary(len(hub.conns))  # the sockets of the last minute, closed by the stop
            self.state.shutting_down = True
            await self.state.mailer.stop()
            await self.state.webhooks.stop()
            self.state.feed_publisher.close()
            await presence.stop()
            await hub.stop()
            if redis is not None:
                await redis.aclose()
            await renderer.close()
            self.state.images.close()
            await self.state.spam_check.close()
            await replicas.stop()
            await pool.close()
            gcpolicy.unfreeze()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "websocket":
            if scope["path"] == "/ws" and self.state is not None:
                await ws.endpoint(scope, receive, send, self.state)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        if kind != "http":
            await self.starlette(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        replicas = self.state.replicas if self.state is not None else None
        wrote = replicas is not None and replicas.enabled and scope["method"] not in ("GET", "HEAD", "OPTIONS")

        async def send_with_headers(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
                if wrote and 200 <= status < 300 and replicas is not None:
                    # Read-your-writes (server/replicas.py): the WAL position after this write's commit.
                    lsn = await replicas.commit_position()
                    if lsn is not None:
                        message["headers"].append((b"set-cookie", (
                            f"{REPLICA_COOKIE}={lsn}; Max-Age={replicas.cookie_max_age}; Path=/; HttpOnly; "
                            "SameSite=Lax").encode()))
            await send(message)

        try:
            await self.starlette(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_name(scope)
            metrics.HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            metrics.HTTP_LATENCY.labels(route).observe(elapsed)
            access_log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000,
                            extra={"method": scope["method"], "path": scope["path"], "status": status,
                                   "ms": round(elapsed * 1000, 2)})


def _route_name(scope: Any) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    return "static" if scope["path"].startswith("/static/") else "unmatched"


def create_app(settings: config.Settings | None = None) -> Parley:
    """The app. Without `settings` (uvicorn's factory call in `parley serve`: this process's own app) they are
    read from the environment and the process-wide ones applied too (the password hasher's cost); an app built
    from given settings (the in-process tests) leaves the process as it is."""
    if settings is None:
        settings = config.load()
        auth.use_settings(settings)
    return Parley(settings)
