"""The page's URLs answered for crawlers and link previews (server/seo.py): threads, profiles and categories
as HTML with their own title, description, OpenGraph and canonical link, their content readable without
JavaScript, and the API answers the script needs embedded; /robots.txt and /sitemap.xml.

A guest's thread page comes from the kept page (server/pagecache.py) and its HTML is kept with it, so it
costs what the JSON page costs while the thread's seq is unchanged. A signed-in reader gets their own page
(their votes, following, unread) embedded, as the JSON API would answer them.
"""

from __future__ import annotations

from html import escape
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, pagecache, seo
from ..errors import ApiError, NotFound
from ..state import AppState
from ..store import categories, threads
from . import profiles as profile_api
from .common import read_pool, replica_read, state
from .forum import THREAD_LIST, member_page
from .inputs import query

WEB = Path(str(resources.files("server.web")))
TEMPLATE = seo.Template((WEB / "index.html").read_text(encoding="utf-8"))
THREAD_PAGE = 100         # what web/js/views/thread/sync.js asks for first (PAGE)
PROFILE_POSTS = 20        # web/js/views/profile.js
SITEMAP_URLS = 50_000     # per sitemap file (sitemaps.org); past it /sitemap.xml is an index
HTML = "text/html; charset=utf-8"
PRIVATE = {"cache-control": "no-cache", "vary": "Cookie"}


def base_url(request: Request) -> str:
    """PARLEY_PUBLIC_URL, else this request's origin. `parley serve` always sets the former (its own origin by
    default); the latter is only for an app built without it (the in-process tests), and such links are never
    kept for other readers (_guest_thread)."""
    public = request.app.state.settings.public_url
    return (public or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")


def _not_found() -> HTTPException:
    return HTTPException(404)  # app.http_error answers the page, which shows "not found" by itself


@replica_read
async def thread_page(request: Request) -> Response:
    st = state(request)
    head = request.path_params["rest"].split("/", 1)[0]
    if not head.isascii() or not head.isdigit() or len(head) > 18:
        raise _not_found()
    thread_id = int(head)
    after = query(request, "after") or None
    key: pagecache.Key = (thread_id, THREAD_PAGE, after, "oldest")
    user = await auth.current_user(request, st)
    try:
        if user is None:
            return await _guest_thread(request, st, key)
        page = await member_page(st, user, key, read_pool(request))
    except NotFound:
        raise _not_found() from None
    except ApiError as exc:  # a malformed `after` cursor: the page of a link that does not exist
        raise _not_found() from exc
    return Response(_thread_html(request, page), media_type=HTML, headers=PRIVATE)


async def _guest_thread(request: Request, st: AppState, key: pagecache.Key) -> Response:
    cache = st.page_cache
    seq = await cache.current_seq(read_pool(request), key[0])
    if seq is None:
        raise NotFound("gone")
    kept = cache.get(key, seq)
    if kept is None:
        kept = cache.put(key, await threads.page(read_pool(request), key[0], None, key[1], key[2], key[3]))
    html = kept.views.get("html")
    if html is None:
        html = _thread_html(request, kept.page)
        if request.app.state.settings.public_url is not None:  # never keep links made from a request's Host
            kept.views["html"] = html
    return Response(html, media_type=HTML, headers=PRIVATE)


def _thread_html(request: Request, page: dict[str, Any]) -> bytes:
    thread = page["thread"]
    path = seo.thread_path(thread)
    after = request.query_params.get("after")
    more = f"{path}?after={quote(page['next'], safe='')}" if page.get("next") else None
    # The script asks for the first page: only that one is embedded (a later page's link is for crawlers).
    preload = None if after else {f"/api/threads/{thread['id']}?limit={THREAD_PAGE}": page}
    return TEMPLATE.render(title=thread["title"], description=seo.thread_description(page),
                           url=base_url(request) + path, og_type="article",
                           main=seo.thread_main(page, more), preload=preload)


@replica_read
async def profile_page(request: Request) -> Response:
    st = state(request)
    name = request.path_params["rest"].rstrip("/")
    if not 1 <= len(name) <= 32 or "/" in name or "\x00" in name:
        raise _not_found()
    reader = await auth.current_user(request, st)
    try:
        user = await profile_api.profile_for(st, read_pool(request), name, reader)
        posts = await profile_api.posts_for(st, read_pool(request), name, reader, PROFILE_POSTS, None)
    except NotFound:
        raise _not_found() from None
    base = f"/api/users/{quote(name, safe='')}"
    html = TEMPLATE.render(
        title=user["display_name"], description=seo.profile_description(user),
        url=f"{base_url(request)}/u/{quote(user['username'], safe='')}", og_type="profile",
        main=seo.profile_main(user, posts["posts"]),
        preload={base: {"user": user}, f"{base}/posts?limit={PROFILE_POSTS}": posts})
    return Response(html, media_type=HTML, headers=PRIVATE)


@replica_read
async def category_page(request: Request) -> Response:
    st = state(request)
    slug = request.path_params["rest"].rstrip("/")
    if not 1 <= len(slug) <= 64 or "/" in slug:
        raise _not_found()
    try:
        tree, cat_id = await categories.by_slug(read_pool(request), slug)
    except NotFound:
        raise _not_found() from None
    reader = await auth.current_user(request, st)
    listing = await threads.listing(read_pool(request), THREAD_LIST.default, None, slug, "activity", None,
                                    reader["id"] if reader else None)
    category = tree.category(cat_id)
    preload: dict[str, Any] = {"/api/categories": {"categories": msgspec.Raw(tree.roots_json())}}
    if "tab" not in request.query_params:  # the script's Active tab: the list shown here
        preload[f"/api/categories/{quote(slug, safe='')}/threads?limit={THREAD_LIST.default}"] = listing
    html = TEMPLATE.render(
        title=category["name"], description=seo.category_description(category),
        url=f"{base_url(request)}/c/{quote(category['slug'], safe='')}", og_type="website",
        main=seo.category_main(category, listing["threads"]), preload=preload)
    return Response(html, media_type=HTML, headers=PRIVATE)


ROBOTS = """User-agent: *
Disallow: /api/
Disallow: /search
Disallow: /settings
Disallow: /signin
Disallow: /signup
Disallow: /review
Disallow: /forgot-password
Disallow: /reset-password
Disallow: /verify-email
Disallow: /unsubscribe
Sitemap: {base}/sitemap.xml
"""


async def robots(request: Request) -> Response:
    return Response(ROBOTS.format(base=base_url(request)), media_type="text/plain; charset=utf-8",
                    headers={"cache-control": "public, max-age=3600"})


XML = "application/xml; charset=utf-8"
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


@replica_read
async def sitemap(request: Request) -> Response:
    """Every live thread; past SITEMAP_URLS of them, an index of /sitemaps/N.xml files of that many each."""
    base = base_url(request)
    count = await threads.live_count(read_pool(request))
    if count <= SITEMAP_URLS:
        return await _urlset(request, 0)
    pages = -(-count // SITEMAP_URLS)
    entries = "".join(f"<sitemap><loc>{escape(base)}/sitemaps/{n}.xml</loc></sitemap>" for n in range(1, pages + 1))
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{SITEMAP_NS}">{entries}</sitemapindex>\n'
    return Response(body, media_type=XML)


@replica_read
async def sitemap_part(request: Request) -> Response:
    head = request.path_params["n"]
    if not head.isascii() or not head.isdigit() or not 1 <= len(head) <= 6 or int(head) < 1:
        raise _not_found()
    starts = await threads.sitemap_starts(read_pool(request), SITEMAP_URLS)
    n = int(head)
    if n > len(starts):
        raise _not_found()
    return await _urlset(request, starts[n - 1])


async def _urlset(request: Request, after_id: int) -> Response:
    base = escape(base_url(request))
    rows = await threads.sitemap_page(read_pool(request), after_id, SITEMAP_URLS)
    if not rows and after_id:
        raise _not_found()  # past the last page (its threads were deleted since the index was read)
    urls = "".join(
        f"<url><loc>{base}{escape(seo.thread_path(dict(r)))}</loc>"
        f"<lastmod>{r['last_activity_at'].strftime('%Y-%m-%dT%H:%M:%SZ')}</lastmod></url>" for r in rows)
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SITEMAP_NS}">{urls}</urlset>\n'
    return Response(body, media_type=XML)


# The page's URLs this module answers (not API operations: the OpenAPI document leaves them out, as it does the
# page itself).
PAGES = (thread_page, profile_page, category_page, robots, sitemap, sitemap_part)
