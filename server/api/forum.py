"""Categories, threads, posts, votes and the event log over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import auth, limits, metrics, pagecache, privileges, render, spamcheck, trust
from ..db import transaction
from ..effects import after_commit
from ..errors import ApiError, BadRequest, Unauthorized
from ..fields import NO_NUL, Id, Text, whole
from ..live.presence import PAGE_DEFAULT, PAGE_MAX
from ..sessioncache import Guard
from ..state import AppState
from ..store import categories, drafts, events, following, ignores, posts, threads, uploads
from ..store.cursor import CURSOR, unknown_cursor
from ..store.sessions import StaleSession
from ..wire import iso
from . import mentions
from .common import json, no_content, read_pool, replica_read, state, writing, writing_cached
from .inputs import PageSize, path_id, query, query_int, query_limit
from .tags import Tags, normal, tag_param

# Patterns are always used with fullmatch(): "cooking\n" is not a slug.
SLUG = re.compile(limits.SLUG_PATTERN)
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
# The contract's limits, declared once: parse() enforces them, openapi.py publishes them.
Slug = Annotated[str, msgspec.Meta(pattern=whole(SLUG),
                                   description=f"1–{limits.SLUG_MAX} of a-z 0-9 and inner hyphens")]
SlugRef = Annotated[str, msgspec.Meta(pattern=NO_NUL, description="A category slug (unknown: 404)")]
Title = Annotated[str, Text(1, limits.TITLE_MAX, refuse="title")]
THREAD_LIST, THREAD_PAGE, EVENTS = PageSize(20, 100), PageSize(50, 200), PageSize(100, 1000)
PRESENCE = PageSize(PAGE_DEFAULT, PAGE_MAX)
BODY = Text(1, limits.BODY_MAX)  # a post's body (also a reply by mail's, outbox/inbound.py)
Body = Annotated[str, BODY]
CategoryName = Annotated[str, Text(1, limits.CATEGORY_NAME_MAX, refuse="name")]


class NewCategory(msgspec.Struct):
    slug: Slug
    name: CategoryName
    parent: SlugRef | None = None


class NewThread(msgspec.Struct):
    category: SlugRef
    title: Title
    body: Body
    tags: Tags = msgspec.field(default_factory=list)


class ThreadChange(msgspec.Struct):
    title: Title | None = None
    locked: bool | None = None
    category: SlugRef | None = None
    tags: Tags | None = None


class Duplicate(msgspec.Struct):
    of: Id | None


class Accepted(msgspec.Struct):
    post_id: Id | None


class NewPost(msgspec.Struct):
    body: Body
    parent_id: Id | None = None


class PostEdit(msgspec.Struct):
    body: Body
    revision: int | None = None


class Vote(msgspec.Struct):
    value: Literal[-1, 0, 1]


async def render_body(st: AppState, text: str, user_id: int) -> str:
    """The body's HTML, rendered off the event loop within the size and time budgets (server/render.py);
    bodies that wait for a render worker wait in their user's queue, served fairly between users. Images of our
    uploads get their size, any other image becomes a link (render.place_images)."""
    html = await st.renderer.render(text, user_id)
    if "<img" in html:
        html = render.place_images(html, await uploads.dimensions(st.pool, render.upload_shas(html)))
    return html


@replica_read
async def list_categories(request: Request) -> Response:
    tree = await categories.tree(read_pool(request))
    return Response(b'{"categories":%s}' % tree.roots_json(), media_type="application/json")


async def create_category(request: Request) -> Response:
    st, user, body, _ = await writing(request, NewCategory, moderator=True, bucket="moderation")
    async with transaction(st.pool) as conn:
        category = await categories.create(conn, body.slug, body.name, body.parent)
    return json({"category": category}, 201)


@replica_read
async def list_threads(request: Request) -> Response:
    st = state(request)
    lim = query_limit(request, THREAD_LIST)
    slug = request.path_params.get("slug")
    sort = query(request, "sort", "activity")
    if sort not in threads.LIST_SORTS:
        raise BadRequest("sort must be activity, newest or top", code="bad_parameter", field="sort")
    filter_ = query(request, "filter")
    if filter_ is not None and filter_ not in threads.LIST_FILTERS:
        raise BadRequest("filter must be unanswered, following or unread", code="bad_parameter", field="filter")
    user = await auth.current_user(request, st)
    if user is None and filter_ in threads.READER_FILTERS:
        raise Unauthorized(f"Sign in to list the threads you {'follow' if filter_ == 'following' else 'have not read'}")
    tag = tag_param(request)
    return json(await threads.listing(read_pool(request), lim, query(request, "before") or None, slug,
                                      sort, filter_, user["id"] if user else None, tag))


async def create_thread(request: Request) -> Response:
    st, user, body, _ = await writing(request, NewThread, bucket="thread")
    title, text = body.title, body.body
    trust.check_not_silenced(user)
    await trust.check_new_thread(st, user)
    html, mentioned = await mentions.link(st, await render_body(st, text, user["id"]))
    trust.check_post(user, st.settings.trust, html, mentioned)
    held = spamcheck.needs_check(st.spam_check, user) and await st.spam_check.is_spam(
        user["username"], f"{title}\n\n{text}", "question", request.client.host if request.client else "",
        request.headers.get("user-agent", ""))
    async with transaction(st.pool) as conn:
        await trust.check_new_thread(st, user, conn)
        written = await threads.create(conn, user["id"], body.category, title, text, html, mentioned,
                                       normal(body.tags), privileges.can(user, "create_tag", st.settings.trust), held)
        written.merge(await drafts.discard(conn, user["id"], "ask"))  # the question is sent: its draft goes
    await after_commit(st, written)
    return json(written.value, 201)


async def update_thread(request: Request) -> Response:
    st, user, body, thread_id = await writing(request, ThreadChange, bucket="edit")
    title = body.title
    async with transaction(st.pool) as conn:
        written = await threads.update(conn, thread_id, user, title, body.locked, body.category,
                                       normal(body.tags) if body.tags is not None else None,
                                       privileges.can(user, "create_tag", st.settings.trust))
    await after_commit(st, written)
    return json({"thread": written.value})


async def set_duplicate(request: Request) -> Response:
    st, user, body, thread_id = await writing(request, Duplicate, moderator=True, bucket="moderation")
    async with transaction(st.pool) as conn:
        written = await threads.set_duplicate(conn, thread_id, user, body.of)
    await after_commit(st, written)
    return json({"thread": written.value})


async def set_accepted(request: Request) -> Response:
    st, user, body, thread_id = await writing(request, Accepted, bucket="edit")
    async with transaction(st.pool) as conn:
        written = await threads.set_accepted(conn, thread_id, user, body.post_id)
    await after_commit(st, written)
    return json({"thread": written.value})


@replica_read
async def get_thread(request: Request) -> Response:
    st = state(request)
    thread_id = path_id(request)
    lim = query_limit(request, THREAD_PAGE)
    sort = query(request, "sort", "oldest")
    if sort not in threads.SORTS:
        raise BadRequest("sort must be oldest, newest or top", code="bad_parameter", field="sort")
    user = await auth.current_user(request, st)
    after = query(request, "after") or None
    cache, key = st.page_cache, (thread_id, lim, after, sort)
    if user is not None:
        return json(await member_page(st, user, key, read_pool(request)))
    # A guest: the kept page while the thread's seq has not moved (server/pagecache.py).
    seq = await cache.current_seq(read_pool(request), thread_id)
    if seq is not None:
        if request.headers.get("if-none-match") == pagecache.etag(thread_id, seq):
            return Response(status_code=304, headers=pagecache.headers(thread_id, seq))
        kept = cache.get(key, seq)
        if kept is not None:
            return Response(kept.body, media_type="application/json", headers=pagecache.headers(thread_id, seq))
    kept = cache.put(key, await threads.page(read_pool(request), thread_id, None, lim, after, sort))
    return Response(kept.body, media_type="application/json", headers=pagecache.headers(thread_id, kept.seq))


async def member_page(st: AppState, user: Any, key: pagecache.Key, pool: asyncpg.Pool) -> dict[str, Any]:
    """A signed-in member's thread page (the API's and the one the server renders): a moderator's, a silenced
    member's or one with posts held by the spam check is read for them (they see what others do not); everyone
    else's is the kept page made theirs. Posts of members they ignore are marked."""
    thread_id, lim, after, sort = key
    if posts.sees_hidden(user) or (st.spam_check.enabled and await posts.has_pending(st.pool, user["id"])):
        page = await threads.page(st.pool, thread_id, user["id"], lim, after, sort, posts.reader_of(user))
    else:
        page = await reader_page(st, st.page_cache, key, user["id"], pool)
    return ignores.mark(page, await ignores.ignored_by(st.pool, user["id"]))


async def reader_page(st: AppState, cache: pagecache.PageCache, key: pagecache.Key, user_id: int,
                      pool: asyncpg.Pool) -> dict[str, Any]:
    """A signed-in reader's page: the kept page and their part of it read with the thread's seq in one
    statement (server/pagecache.py). A kept page older than that seq is read again once; if the thread moves
    again meanwhile (a busy thread), the reader's page is read whole in one snapshot, as without a cache."""
    thread_id, lim, after, sort = key
    kept = cache.peek(key)
    for _ in range(2):
        if kept is None:
            kept = cache.put(key, await threads.page(pool, thread_id, None, lim, after, sort))
        mine = await following.reader_state(pool, user_id, thread_id, kept.ids)
        if mine is None:
            break  # deleted meanwhile: the whole read below says so
        seq, reader, votes = mine
        if seq == kept.seq:
            return pagecache.personalize(kept.page, reader, votes)
        kept = None
    return await threads.page(pool, thread_id, user_id, lim, after, sort)


async def create_post(request: Request) -> Response:
    """The most frequent write: its user may come from the session cache, checked by the post's own statement
    (server/sessioncache.py). When that check fails, or a cached row refused, nothing was written: the request
    runs once more from a fresh lookup, as every other write does."""
    try:
        return await _create_post(request, cached=True)
    except Unguarded:
        return await _create_post(request, cached=False)
    except StaleSession:
        metrics.SESSION_CACHE.labels("stale").inc()
        state(request).session_cache.drop(request.cookies.get(auth.COOKIE, ""))
        return await _create_post(request, cached=False)


class Unguarded(StaleSession):
    """This post is written without the statement's check (one the spam check may hold: store/posts.create_pending),
    so its user must come from a fresh lookup; the cached entry itself is fine and stays."""


async def _create_post(request: Request, cached: bool) -> Response:
    if cached:
        (st, user, body, thread_id), guard = await writing_cached(request, NewPost, bucket="post")
    else:
        (st, user, body, thread_id), guard = await writing(request, NewPost, bucket="post"), None
    text = body.body
    key = request.headers.get("idempotency-key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequest("Idempotency-Key must be 1–200 visible ASCII characters", code="bad_idempotency_key")
    if body.parent_id is not None and not privileges.can(user, "comment_anywhere", st.settings.trust):
        # One may always comment on one's own posts and under the answers to one's own question.
        owners = await posts.comment_owners(st.pool, body.parent_id)
        if owners is not None and user["id"] not in owners:
            with believed(guard):
                privileges.require(user, "comment_anywhere", st.settings.trust, "comment here")
    client = (request.client.host if request.client else "", request.headers.get("user-agent", ""))
    draft = drafts.key("comment", body.parent_id) if body.parent_id is not None else drafts.key("thread", thread_id)
    post, created = await make_post(st, user, thread_id, text, body.parent_id, key, draft, client=client, guard=guard)
    return json({"post": post}, 201 if created else 200)


@contextmanager
def believed(guard: Guard | None) -> Iterator[None]:
    """A refusal made from a cached users row (guard set) is not believed: StaleSession, so the request runs again
    from a fresh one (the row may have changed since: a silence lifted, a privilege earned)."""
    try:
        yield
    except ApiError:
        if guard is not None:
            raise StaleSession() from None
        raise


async def make_post(st: AppState, user: Any, thread_id: int, text: str, parent_id: int | None = None,
                    key: str | None = None, draft: str | None = None,
                    client: tuple[str, str] = ("", ""), guard: Guard | None = None) -> tuple[dict[str, Any], bool]:
    """A response or comment by `user`, after every check of the caller's (session or reply key, suspension,
    the user's post bucket, the body's rules): rendered, stored with its event and notifications, published.
    The one way a post is made, over HTTP (create_post) and by e-mail (outbox/inbound.py). Answers the Post
    and whether it was made now (False: an idempotent replay of `key`). `draft`: the key of the writer's draft
    that this post sends, deleted with the post (the same statement: a post that fails keeps it).
    `client`: the writer's address and user agent, for the spam check (server/spamcheck.py).
    `guard`: `user` came from the session cache (server/sessioncache.py): the post's statement checks it, and a
    refusal made from it is not believed (StaleSession)."""
    needs_check = spamcheck.needs_check(st.spam_check, user)
    if needs_check and guard is not None:
        raise Unguarded()  # checked before the body is rendered: the fresh try renders it once
    with believed(guard):
        trust.check_not_silenced(user)
    html, mentioned = await mentions.link(st, await render_body(st, text, user["id"]))
    with believed(guard):
        trust.check_post(user, st.settings.trust, html, mentioned)
    if needs_check and await st.spam_check.is_spam(
            user["username"], text, "response" if parent_id is None else "comment", *client):
        async with st.pool.acquire() as conn:  # held for a moderator: nobody else sees or hears of it
            pending = await posts.create_pending(conn, thread_id, user["id"], text, parent_id, html,
                                                 idempotency_key=key)
        return pending.value
    async with st.pool.acquire() as conn:  # posts.create opens a transaction only if it needs more than one statement
        # The draft goes in the post's own statement (no second round trip; an idempotent replay deletes it apart).
        written = await posts.create(conn, thread_id, user["id"], text, parent_id, html, key, mentioned, draft,
                                     guard)
    await after_commit(st, written)
    return written.value  # type: ignore[no-any-return]


async def edit_post(request: Request) -> Response:
    st, user, body, post_id = await writing(request, PostEdit, bucket="edit")
    trust.check_not_silenced(user)
    text = body.body
    html, mentioned = await mentions.link(st, await render_body(st, text, user["id"]))
    trust.check_post(user, st.settings.trust, html, mentioned)  # the editor's limits (a moderator has none)
    async with transaction(st.pool) as conn:
        written = await posts.edit(conn, post_id, user, text, body.revision, html, mentioned,
                                   privileges.can(user, "edit_others", st.settings.trust))
        written.merge(await drafts.discard(conn, user["id"], drafts.key("edit", post_id)))
    await after_commit(st, written)
    post = written.value
    votes = await posts.my_votes(st.pool, user["id"], [post_id])
    return json({"post": {**post, "my_vote": votes.get(post_id, 0)}})


async def delete_post(request: Request) -> Response:
    st, user, _, post_id = await writing(request, bucket="edit")
    async with transaction(st.pool) as conn:
        written = (await posts.delete(conn, post_id, user)).merge(await threads.withdraw_deleted(conn, post_id))
    await after_commit(st, written)
    return no_content()


@replica_read
async def revisions(request: Request) -> Response:
    after = query_int(request, "after", 0, 0, 2**31 - 1)
    items, nxt = await posts.revisions(read_pool(request), path_id(request), after)
    # `next` appears only when the byte budget cut the answer short (the contract's shape otherwise).
    return json({"revisions": items, "next": nxt} if nxt is not None else {"revisions": items})


async def vote(request: Request) -> Response:
    st, user, body, post_id = await writing(request, Vote, bucket="vote")
    if body.value:
        name = "vote_up" if body.value > 0 else "vote_down"
        privileges.require(user, name, st.settings.trust, name.replace("_", " "))
    async with transaction(st.pool) as conn:
        written = await posts.vote(conn, post_id, user["id"], body.value)
    await after_commit(st, written)
    return json(written.value)


async def thread_events(request: Request) -> Response:
    st = state(request)
    thread_id = path_id(request)
    since = query_int(request, "since", 0, 0, limits.BIGINT)
    lim = query_limit(request, EVENTS)
    row = await threads.get_row(st.pool, thread_id)
    rows = await events.since(st.pool, thread_id, since, lim)
    # data is stored JSON text: splice it in rather than decode and encode it again.
    items = b",".join(
        b'{"type":"event","thread":%d,"seq":%d,"name":%s,"data":%s,"created_at":"%s"}' % (
            thread_id, r["seq"], msgspec.json.encode(r["name"]), r["data"].encode(),
            (iso(r["created_at"]) or "").encode())
        for r in rows)
    body = b'{"events":[%s],"seq":%d}' % (items, row["seq"])
    return Response(body, media_type="application/json")


async def site_presence(request: Request) -> Response:
    return json(await state(request).presence.page("site", *_presence_page(request)))


async def thread_presence(request: Request) -> Response:
    st = state(request)
    thread_id = path_id(request)
    await threads.get_row(st.pool, thread_id)
    return json(await st.presence.page(thread_id, *_presence_page(request)))


def _presence_page(request: Request) -> tuple[int, str | None]:
    """`limit` (default 50, at most 200) and `after` (a `next` cursor) of the presence endpoints."""
    from ..live.presence import decode_cursor
    lim = query_limit(request, PRESENCE)
    raw = query(request, "after") or None
    if raw is None:
        return lim, None
    if not CURSOR.fullmatch(raw):  # the shape every cursor has (store/cursor.py): else 400, as the document says
        raise BadRequest("after is not a cursor (base64url)", code="bad_cursor", field="after")
    try:
        return lim, decode_cursor(raw)
    except ValueError:
        raise unknown_cursor("after") from None


class Approval(msgspec.Struct):
    approved: bool


async def approve_post(request: Request) -> Response:
    """PUT /api/posts/{id}/approval (moderator): publish a post the spam check held, live with its notifications,
    or delete it."""
    st, moderator, body, post_id = await writing(request, Approval, moderator=True, bucket="moderation")
    async with transaction(st.pool) as conn:
        written = await posts.approve(conn, post_id, moderator, body.approved)
    await after_commit(st, written)
    return json({"post": written.value})


class Ignored(msgspec.Struct):
    ignored: bool


async def set_ignored(request: Request) -> Response:
    """PUT /api/users/{username}/ignored: ignore a member (their posts collapsed, no notifications) or stop."""
    st, user, body, _ = await writing(request, Ignored, bucket="edit")
    async with transaction(st.pool) as conn:
        ignored = await ignores.set_ignored(conn, user, request.path_params["username"], body.ignored)
    return json({"ignored": ignored})
