"""Atom feeds (CONTRACT "Identity and integrations"): the newest threads of the site or of a category (its
descendants included), a thread's newest posts, a user's newest posts; 50 entries each, with ETag and 304.

The ETag is a hash of the feed's bytes: a reader polling an unchanged feed gets 304 and no body. Links are
built from PARLEY_PUBLIC_URL (else the server's own origin), like the crawler pages' (server/api/pages.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import atom, seo
from ..errors import NotFound
from ..store import categories, feeds, profiles
from .common import read_pool, replica_read
from .pages import base_url
from .profiles import USERNAME_MAX

ENTRIES = 50
HEADERS = {"cache-control": "no-cache"}


def answer(request: Request, body: bytes) -> Response:
    tag = atom.etag(body)
    if tag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers={**HEADERS, "etag": tag})
    return Response(body, media_type=atom.MEDIA_TYPE, headers={**HEADERS, "etag": tag})


def _thread_entries(base: str, rows: list[dict[str, Any]]) -> list[atom.Entry]:
    return [atom.Entry(
        id=f"{base}/t/{t['id']}", title=t["title"], url=base + seo.thread_path(t), published=t["created_at"],
        updated=t["updated_at"], author_name=t["author"]["display_name"],
        author_uri=f"{base}/u/{quote(t['author']['username'], safe='')}", html=t["html"],
        category=(t["category"]["slug"], t["category"]["name"])) for t in rows]


def _post_entries(base: str, posts: list[dict[str, Any]], titles: dict[int, str]) -> list[atom.Entry]:
    out = []
    for p in posts:
        title = titles[p["thread_id"]]
        what = {"question": title, "response": f"Response to {title}", "comment": f"Comment on {title}"}[p["kind"]]
        url = f"{base}/t/{p['thread_id']}#post-{p['id']}"
        out.append(atom.Entry(
            id=url, title=what, url=url, published=p["created_at"], updated=p["edited_at"] or p["created_at"],
            author_name=p["author"]["display_name"],
            author_uri=f"{base}/u/{quote(p['author']['username'], safe='')}", html=p["html"]))
    return out


@replica_read
async def latest(request: Request) -> Response:
    base = base_url(request)
    rows, _ = await feeds.newest_threads(read_pool(request), ENTRIES, None)
    return answer(request, atom.document(
        feed_id=f"{base}/feeds/latest.atom", title="Parley: newest questions", self_url=f"{base}/feeds/latest.atom",
        page_url=f"{base}/", entries=_thread_entries(base, rows)))


@replica_read
async def category(request: Request) -> Response:
    slug = request.path_params["slug"]
    try:
        tree, cat_id = await categories.by_slug(read_pool(request), slug)
    except NotFound:
        raise HTTPException(404) from None
    base = base_url(request)
    rows, _ = await feeds.newest_threads(read_pool(request), ENTRIES, tree.descendants(cat_id))
    url = f"{base}/feeds/c/{quote(slug, safe='')}.atom"
    return answer(request, atom.document(
        feed_id=url, title=f"Parley: newest questions in {tree.by_id[cat_id]['name']}", self_url=url,
        page_url=f"{base}/c/{quote(slug, safe='')}", entries=_thread_entries(base, rows)))


@replica_read
async def tag(request: Request) -> Response:
    name = request.path_params["name"].lower()
    if not 1 <= len(name) <= 32:
        raise HTTPException(404)
    rows = await feeds.newest_tagged(read_pool(request), ENTRIES, name)
    if rows is None:
        raise HTTPException(404)
    base = base_url(request)
    url = f"{base}/feeds/tag/{quote(name, safe='')}.atom"
    return answer(request, atom.document(
        feed_id=url, title=f"Parley: newest questions tagged {name}", self_url=url,
        page_url=f"{base}/search?q={quote('tag:' + name, safe='')}", entries=_thread_entries(base, rows)))


@replica_read
async def thread(request: Request) -> Response:
    head = request.path_params["id"]
    if not head.isascii() or not head.isdigit() or len(head) > 18:
        raise HTTPException(404)
    try:
        t, posts = await feeds.thread_posts(read_pool(request), int(head), ENTRIES)
    except NotFound:
        raise HTTPException(404) from None
    base = base_url(request)
    url = f"{base}/feeds/t/{t['id']}.atom"
    return answer(request, atom.document(
        feed_id=url, title=f"Parley: {t['title']}", self_url=url, page_url=base + seo.thread_path(t),
        entries=_post_entries(base, posts, {t["id"]: t["title"]})))


@replica_read
async def user(request: Request) -> Response:
    name = request.path_params["username"]
    if not 1 <= len(name) <= USERNAME_MAX or "\x00" in name:
        raise HTTPException(404)
    try:
        found = await profiles.user_posts(read_pool(request), name, None, ENTRIES, None)
        who = await profiles.profile(read_pool(request), name)
    except NotFound:
        raise HTTPException(404) from None
    base = base_url(request)
    url = f"{base}/feeds/u/{quote(who['username'], safe='')}.atom"
    posts = found["posts"]
    return answer(request, atom.document(
        feed_id=url, title=f"Parley: posts by {who['display_name']}", self_url=url,
        page_url=f"{base}/u/{quote(who['username'], safe='')}",
        entries=_post_entries(base, posts, {p["thread"]["id"]: p["thread"]["title"] for p in posts})))


FEEDS = (latest, category, tag, thread, user)
