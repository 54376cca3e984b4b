"""Threads: listing by activity, the thread page, creation and moderation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..wire import encode, iso, time_in_range
from . import Written, categories, events, following, modlog, notifications, posts, reputation, users
from . import tags as tag_store
from .cursor import cursor_decode, cursor_encode, unknown_cursor

THREAD_COLUMNS = f"""
SELECT t.id, t.title, t.category_id, t.created_at, t.response_count, t.last_activity_at, t.locked, t.seq,
       t.deleted, t.score, t.accepted_id, t.tags, d.id AS duplicate_id, d.title AS duplicate_title,
       {users.brief_columns("u", "author_")}
"""
# The original of a duplicate is shown while it lives (a deleted original: no longer a duplicate).
THREAD_JOINS = """JOIN users u ON u.id = t.author_id
LEFT JOIN threads d ON d.id = t.duplicate_of AND NOT d.deleted
"""
THREAD_SELECT = THREAD_COLUMNS + "FROM threads t " + THREAD_JOINS


def thread_dict(row: asyncpg.Record, tree: categories.Tree) -> dict[str, Any]:
    return {
        "id": row["id"], "title": row["title"], "category": tree.brief(row["category_id"]),
        "author": users.brief(row, "author_"),
        "created_at": iso(row["created_at"]), "response_count": row["response_count"],
        "last_activity_at": iso(row["last_activity_at"]), "locked": row["locked"], "seq": row["seq"],
        "score": row["score"], "accepted_id": row["accepted_id"], "tags": list(row["tags"]),
        "duplicate_of": ({"id": row["duplicate_id"], "title": row["duplicate_title"]}
                         if row["duplicate_id"] is not None else None),
        # The reader's; in events and feeds (and for guests) always these (CONTRACT "Thread").
        "following": False, "unread": None,
    }


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def micros(ts: datetime) -> int:
    """A time as integer microseconds since the epoch (exact, unlike float timestamps)."""
    return (ts - EPOCH) // MICROSECOND


def from_micros(value: int, name: str) -> datetime:
    """A cursor's time: one outside the range of client times (wire.time_in_range) is no position of a list."""
    try:
        ts = EPOCH + value * MICROSECOND
    except OverflowError:
        raise unknown_cursor(name) from None
    if not time_in_range(ts):
        raise unknown_cursor(name)
    return ts


# List sorts: (column, cursor tag, column value → cursor int, cursor int → parameter). Every sort is
# descending on (column, id), served by its own index (migration 0005_qa, schema.sql).
LIST_SORTS: dict[str, tuple[str, str]] = {"activity": ("last_activity_at", "a"), "newest": ("created_at", "n"),
                                         "top": ("score", "t")}
LIST_FILTERS = ("unanswered", "following", "unread")
READER_FILTERS = ("following", "unread")  # signed-in readers only: the reader's id is the last parameter

# The reader's threads for the `following` and `unread` filters: driven from the reader's own rows.
_FOLLOWING = "t.id IN (SELECT f.thread_id FROM thread_follows f WHERE f.user_id = ${u} AND f.following)"
_UNREAD = """t.id IN (SELECT r.thread_id FROM thread_reads r WHERE r.user_id = ${u} AND EXISTS (
    SELECT 1 FROM posts up WHERE up.thread_id = r.thread_id AND up.seq > r.seq AND NOT up.deleted
      AND up.kind <> 'question' AND up.author_id <> ${u}))"""


def list_query(sort: str, filter_: str | None, by_category: bool, keyset: bool, by_tag: bool = False) -> str:
    """The SQL of one thread list. Parameters: $1 limit, then the category ids, then the tag's id, then the
    cursor (value, id), then (filters following and unread) the reader's id.

    Each variant is its own fixed statement rather than `$n IS NULL OR …`, so that a prepared
    statement's generic plan still uses the index for its sort (tests/api/test_api_lists.py EXPLAINs them).
    A tag's list walks thread_tags in the sort's order (its copy of the thread's keys, migration 0012_tags).
    """
    column = LIST_SORTS[sort][0]
    keys = "x" if by_tag else "t"  # where the sort's columns are read
    ident = "x.thread_id" if by_tag else "t.id"
    # A silenced asker's threads leave the lists (store/silence.py; their pages stay for moderators and them).
    where = ["NOT t.deleted", "NOT t.held",  # a held question's thread (server/spamcheck.py) is in no list either
             "NOT t.author_id = any(coalesce((SELECT array_agg(s.id) FROM users s WHERE s.silenced_at IS NOT NULL),"
             " '{}'::bigint[]))"]
    n = 1
    if filter_ == "unanswered":
        where.append(f"{keys}.response_count = 0")
    if by_category:
        n += 1
        where.append(f"t.category_id = any(${n}::bigint[])")
    if by_tag:
        n += 1
        where.append(f"x.tag_id = ${n}::bigint")
    if keyset:
        cast = "bigint" if sort == "top" else "timestamptz"
        where.append(f"({keys}.{column}, {ident}) < (${n + 1}::{cast}, ${n + 2}::bigint)")
        n += 2
    if filter_ == "following":
        where.append(_FOLLOWING.replace("{u}", str(n + 1)))
    elif filter_ == "unread":
        where.append(_UNREAD.replace("{u}", str(n + 1)))
    source = ("FROM thread_tags x JOIN threads t ON t.id = x.thread_id " if by_tag else "FROM threads t ")
    return (THREAD_COLUMNS + source + THREAD_JOINS + " WHERE " + " AND ".join(where)
            + f" ORDER BY {keys}.{column} DESC, {ident} DESC LIMIT $1")


async def listing(conn: asyncpg.Connection | asyncpg.Pool, limit: int, before: str | None,
                  category_slug: str | None = None, sort: str = "activity",
                  filter_: str | None = None, user_id: int | None = None,
                  tag_name: str | None = None) -> dict[str, Any]:
    """Threads in `sort` order (newest activity, newest, top question score), keyset-paged by (value, id);
    `following` and `unread` for the reader `user_id` (required by the filters following and unread); with
    `tag_name`, only the threads carrying that tag (an unknown tag: none)."""
    if category_slug is not None:
        tree, cat_id = await categories.by_slug(conn, category_slug)
        cat_ids: list[int] | None = tree.descendants(cat_id)
    else:
        tree, cat_ids = await categories.tree(conn), None
    column, tag = LIST_SORTS[sort]
    args: list[Any] = [limit + 1]
    if cat_ids is not None:
        args.append(cat_ids)
    tag_id = None
    if tag_name is not None:
        tag_id = await conn.fetchval("SELECT id FROM tags WHERE name = $1", tag_name)
        if tag_id is None and before is None:
            return {"threads": [], "next": None}
        args.append(tag_id or 0)
    if before is not None:
        if sort == "activity":  # the revision-1 cursor, unchanged
            value, tid = cursor_decode(before, "before", (int, int))
        else:
            got, value, tid = cursor_decode(before, "before", (str, int, int))
            if got != tag:
                raise unknown_cursor("before", "before is a cursor of another sort")
        args += [value if sort == "top" else from_micros(value, "before"), tid]
    if filter_ in READER_FILTERS:
        assert user_id is not None, "the API refuses these filters to guests"
        args.append(user_id)
    rows = await conn.fetch(list_query(sort, filter_, cat_ids is not None, before is not None, tag_name is not None),
                            *args)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more:
        last = rows[-1]
        value = last[column] if sort == "top" else micros(last[column])
        nxt = cursor_encode(value, last["id"]) if sort == "activity" else cursor_encode(tag, value, last["id"])
    return {"threads": await following.decorate(conn, user_id, [thread_dict(r, tree) for r in rows]), "next": nxt}


async def get_row(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(THREAD_SELECT + " WHERE t.id = $1", thread_id)
    if row is None or row["deleted"]:
        raise NotFound(f"No thread {thread_id}")
    return row


async def get(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int) -> dict[str, Any]:
    return thread_dict(await get_row(conn, thread_id), await categories.tree(conn))


async def rows(conn: asyncpg.Connection | asyncpg.Pool, thread_ids: list[int]) -> list[asyncpg.Record]:
    """The threads' rows (thread_dict's input), deleted ones included (a feed announces their deletion)."""
    return await conn.fetch(THREAD_SELECT + " WHERE t.id = any($1::bigint[])", thread_ids)  # type: ignore[no-any-return]


# -- seqs, for the live path and the page cache: one indexed read, no page -----------------------------

async def live_seq(conn: asyncpg.Connection | asyncpg.Pool, thread_id: int) -> int | None:
    """The thread's seq now; None if it is deleted or was never there."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT seq FROM threads WHERE id = $1 AND NOT deleted", thread_id)


async def seqs(conn: asyncpg.Connection | asyncpg.Pool, thread_ids: list[int]) -> dict[int, int]:
    """The seq of each of these threads that exists, deleted or not."""
    found = await conn.fetch("SELECT id, seq FROM threads WHERE id = any($1::bigint[])", thread_ids)
    return {r["id"]: r["seq"] for r in found}


async def deleted_among(conn: asyncpg.Connection | asyncpg.Pool, thread_ids: list[int]) -> set[int]:
    """Which of these threads are deleted."""
    found = await conn.fetch("SELECT id FROM threads WHERE id = any($1::bigint[]) AND deleted", thread_ids)
    return {r["id"] for r in found}


async def create(conn: asyncpg.Connection, user_id: int, category_slug: str, title: str,
                 body: str, html: str, mentioned: list[int] | None = None, tags: list[str] | None = None,
                 may_create_tags: bool = False, held: bool = False) -> Written[dict[str, Any]]:
    """A thread and its question, which is the thread's event 1. The author follows it; `mentioned` users
    (ids, links already in `html`) are notified, and the followers of its `tags` (normalised names; a new name
    needs `may_create_tags`) with kind `tagged`. `held`: the spam check called it spam; the question is pending,
    with no event and no notification, and the thread is in no list until a moderator publishes it
    (posts.approve)."""
    cat_id = await conn.fetchval("SELECT id FROM categories WHERE slug = $1", category_slug)
    if cat_id is None:
        raise NotFound(f"No category {category_slug!r}", field="category")
    # seq 0: the question, written like every other new post, takes seq 1 (store/events.py).
    thread_id = await conn.fetchval(
        "INSERT INTO threads (category_id, author_id, title, seq) VALUES ($1, $2, $3, 0) RETURNING id",
        cat_id, user_id, title)
    if held:
        await conn.execute("UPDATE threads SET held = true WHERE id = $1", thread_id)
        asked = await posts.create_pending(conn, thread_id, user_id, body, None, html, question=True)
        if tags:
            await tag_store.set_tags(conn, thread_id, tags, user_id, may_create_tags)
        thread = {**await get(conn, thread_id), "following": True, "unread": 0}
        return Written({"thread": thread, "question": asked.value[0]})
    asked = await posts.create_question(conn, thread_id, user_id, body, html, mentioned)
    if tags:
        await tag_store.set_tags(conn, thread_id, tags, user_id, may_create_tags)
        question = asked.value[0]
        tagged = await tag_store.notify_followers(conn, question["author"], thread_id, title, question["id"], tags)
        asked.notified = [*asked.notified, *tagged]
    thread = {**await get(conn, thread_id), "following": True, "unread": 0}
    return Written({"thread": thread, "question": asked.value[0]}).merge(asked)


async def update(conn: asyncpg.Connection, thread_id: int, user: asyncpg.Record, title: str | None,
                 locked: bool | None, category: str | None, tags: list[str] | None = None,
                 may_create_tags: bool = False) -> Written[dict[str, Any]]:
    """Rename or retag (author or moderator), lock or move (moderator): one thread.updated event."""
    row = await conn.fetchrow("SELECT author_id, title, locked, category_id, deleted, held FROM threads"
                              " WHERE id = $1 FOR UPDATE", thread_id)
    if row is None or row["deleted"]:
        raise NotFound(f"No thread {thread_id}")
    if not posts.may_change(user, row["author_id"]):
        raise Forbidden("Only the author or a moderator can change this thread")
    if (locked is not None or category is not None) and not user["is_moderator"]:
        raise Forbidden("Only a moderator can lock or move a thread")
    if row["locked"] and not user["is_moderator"]:
        raise Conflict("This thread is locked", code="thread_locked")  # 409, as for posts and edits
    cat_id = row["category_id"]
    if category is not None:
        cat_id = await conn.fetchval("SELECT id FROM categories WHERE slug = $1", category)
        if cat_id is None:
            raise NotFound(f"No category {category!r}", field="category")
    new = (title if title is not None else row["title"], locked if locked is not None else row["locked"], cat_id)
    added = await tag_store.set_tags(conn, thread_id, tags, user["id"], may_create_tags) if tags is not None else None
    if new == (row["title"], row["locked"], row["category_id"]) and added is None:
        return Written(await get(conn, thread_id))
    await conn.execute("UPDATE threads SET title = $2, locked = $3, category_id = $4 WHERE id = $1",
                       thread_id, *new)
    if modlog.acts_on_other(user, row["author_id"]):
        actions = [("thread.renamed", new[0] != row["title"]),
                   ("thread.locked" if new[1] else "thread.unlocked", new[1] != row["locked"]),
                   ("thread.moved", new[2] != row["category_id"])]
        for action, happened in actions:
            if happened:
                await modlog.record(conn, action, user["id"], thread_id=thread_id, user_id=row["author_id"])
    event, thread = await _thread_updated(conn, thread_id)
    moved_from = row["category_id"] if new[2] != row["category_id"] else None
    notified = await _notify_retagged(conn, thread_id, new[0], added) if added and not row["held"] else []
    return Written(thread, [event], notified, feeds=[thread_id], moved_from=moved_from)


async def _notify_retagged(conn: asyncpg.Connection, thread_id: int, title: str,
                           added: list[str]) -> list[dict[str, Any]]:
    """Followers of a tag the thread has just been given hear of its question as if it had been asked with it."""
    question = await conn.fetchrow("SELECT p.id, " + users.brief_columns("u", "author_") + " FROM posts p"
                                   " JOIN users u ON u.id = p.author_id"
                                   " WHERE p.thread_id = $1 AND p.kind = 'question' AND NOT p.deleted", thread_id)
    if question is None:
        return []
    asker = users.brief_of(question, "author_")
    return await tag_store.notify_followers(conn, asker, thread_id, title, question["id"], added)


SORTS = {
    # sort: (ORDER BY, keyset condition on the cursor, cursor key)
    "oldest": ("p.id ASC", "p.id > $3 AND $4::bigint IS NULL", lambda r: (r["id"],)),
    "newest": ("p.id DESC", "p.id < $3 AND $4::bigint IS NULL", lambda r: (r["id"],)),
    "top": ("p.score DESC, p.id ASC", "(p.score < $4::bigint OR (p.score = $4::bigint AND p.id > $3))",
            lambda r: (r["id"], r["score"])),
}


# Byte budgets of one thread page (bodies and HTML as stored): a page stops adding responses once it
# holds PAGE_BYTES (always at least one response, so paging makes progress), and the comments shown
# under one response stop at COMMENT_BYTES (at least one; `comments_more: true` says some were left out).
PAGE_BYTES = 1 << 20
COMMENT_BYTES = 256 * 1024
_SIZE = "octet_length(p.body) + octet_length(p.html)"


async def page(pool: asyncpg.Pool, thread_id: int, user_id: int | None, limit: int, after: str | None,
               sort: str, viewer: posts.Reader = posts.PUBLIC) -> dict[str, Any]:
    """The thread page: thread, question, a page of responses each with its comments; only the posts `viewer`
    may see (posts.visible: a silenced author's are for moderators and the author only).

    Read in one REPEATABLE READ snapshot, so `thread.seq` is exactly the last
    event reflected in the posts: subscribing with since=seq then misses nothing.
    The sizes are read first and only the posts that fit the budgets are fetched whole.
    """
    order, keyset, key = SORTS[sort]
    cursor: list[Any] = [None, None]
    if after is not None:
        cursor = cursor_decode(after, "after", (int, int) if sort == "top" else (int,)) + [None]
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        trow = await get_row(conn, thread_id)
        tree = await categories.tree(conn)
        question = await conn.fetchrow(posts.POST_SELECT + " WHERE p.thread_id = $1 AND p.kind = 'question'"
                                       f" AND {posts.visible('$2', '$3')}", thread_id, *viewer)
        if question is None:
            raise NotFound(f"No thread {thread_id}")
        # With `top` the accepted response comes first (on the first page), and the rest follow in
        # score order without it; a page that ends on it alone continues from the top of the rest.
        skip = trow["accepted_id"] if sort == "top" else None
        first: list[asyncpg.Record] = []
        if skip is not None and after is None:
            first = list(await conn.fetch(f"SELECT p.id, p.score, {_SIZE} AS size FROM posts p WHERE p.id = $1"
                                          f" AND {posts.visible('$2', '$3')}", skip, *viewer))
        sized = first + list(await conn.fetch(
            f"""
            SELECT p.id, p.score, {_SIZE} AS size FROM posts p
            WHERE p.thread_id = $1 AND p.kind = 'response' AND ($3::bigint IS NULL OR {keyset})
              AND ($5::bigint IS NULL OR p.id <> $5) AND {posts.visible('$6', '$7')}
            ORDER BY {order} LIMIT $2
            """,
            thread_id, limit + 1 - len(first), cursor[0], cursor[1], skip, *viewer))
        comment_sizes = await conn.fetch(
            f"SELECT p.id, p.parent_id, {_SIZE} AS size FROM posts p"
            f" WHERE p.parent_id = any($1::bigint[]) AND p.kind = 'comment' AND {posts.visible('$2', '$3')}"
            " ORDER BY p.id", [r["id"] for r in sized[:limit]], *viewer) if sized else []
        by_parent_size: dict[int, list[asyncpg.Record]] = {}
        for c in comment_sizes:
            by_parent_size.setdefault(c["parent_id"], []).append(c)
        used = len(question["body"].encode()) + len(question["html"].encode())
        chosen: list[asyncpg.Record] = []
        chosen_comments: list[int] = []
        more_comments: set[int] = set()
        for r in sized[:limit]:
            cost = r["size"]
            picked: list[asyncpg.Record] = []
            for c in by_parent_size.get(r["id"], []):
                if picked and sum(x["size"] for x in picked) + c["size"] > COMMENT_BYTES:
                    more_comments.add(r["id"])
                    break
                picked.append(c)
            cost += sum(c["size"] for c in picked)
            if chosen and used + cost > PAGE_BYTES:
                break
            chosen.append(r)
            chosen_comments.extend(c["id"] for c in picked)
            used += cost
        more = len(sized) > len(chosen)
        # The chosen responses and their comments whole, in one read.
        rows = await conn.fetch(posts.POST_SELECT + " WHERE p.id = any($1::bigint[]) ORDER BY p.id",
                                [r["id"] for r in chosen] + chosen_comments) if chosen else []
        position = {r["id"]: i for i, r in enumerate(chosen)}
        responses = sorted((r for r in rows if r["id"] in position), key=lambda r: position[r["id"]])
        comments = [r for r in rows if r["id"] not in position]
        ids = [question["id"], *(r["id"] for r in responses), *(c["id"] for c in comments)]
        votes: dict[int, int] = {}
        reader: dict[str, Any] = {}
        if user_id is not None:
            state = await following.reader_state(conn, user_id, thread_id, ids)
            if state is not None:
                _, reader, votes = state
    by_parent: dict[int, list[dict[str, Any]]] = {}
    for c in comments:
        by_parent.setdefault(c["parent_id"], []).append(posts.post_dict(c, votes.get(c["id"], 0)))
    out = []
    for r in responses:
        post = posts.post_dict(r, votes.get(r["id"], 0))
        post["comments"] = by_parent.get(r["id"], [])
        if r["id"] in more_comments:
            post["comments_more"] = True
        out.append(post)
    return {
        "thread": {**thread_dict(trow, tree), **reader},
        "question": posts.post_dict(question, votes.get(question["id"], 0)),
        "responses": out,
        "next": (cursor_encode(*(TOP_OF_REST if first and len(responses) == 1 else key(responses[-1])))
                 if more and responses else None),
    }


# The `top` cursor (id, score) that every response passes: what follows the accepted response alone.
TOP_OF_REST = (0, 2**62)


async def set_accepted(conn: asyncpg.Connection, thread_id: int, user: asyncpg.Record,
                       post_id: int | None) -> Written[dict[str, Any]]:
    """Accept a response (the asker or a moderator), or withdraw with None: one thread.updated event."""
    row = await conn.fetchrow("SELECT author_id, locked, deleted, accepted_id FROM threads WHERE id = $1 FOR UPDATE",
                              thread_id)
    if row is None or row["deleted"]:
        raise NotFound(f"No thread {thread_id}")
    if not posts.may_change(user, row["author_id"]):
        raise Forbidden("Only the asker or a moderator can accept an answer")
    if row["locked"] and not user["is_moderator"]:
        raise Conflict("This thread is locked", code="thread_locked")
    if post_id is not None:
        post = await conn.fetchrow("SELECT thread_id, kind, deleted FROM posts WHERE id = $1", post_id)
        if post is None:  # an id nobody has is unknown (404); any other post that is not eligible is 422
            raise NotFound(f"No post {post_id}", field="post_id")
        if post["thread_id"] != thread_id or post["kind"] != "response" or post["deleted"]:
            raise Invalid("post_id must be a response of this thread that is not deleted", field="post_id")
    if post_id == row["accepted_id"]:
        return Written(await get(conn, thread_id))
    # Reputation (store/reputation.py): the responders of the old and the new answer and the asker, locked
    # before the acceptance is stamped, recounted after it.
    responders = {r["id"]: r["author_id"] for r in await conn.fetch(
        "SELECT id, author_id FROM posts WHERE id = any($1::bigint[])",
        [i for i in (row["accepted_id"], post_id) if i is not None])}
    touched = await reputation.lock(conn, {*responders.values(), row["author_id"]})
    await conn.execute("UPDATE threads SET accepted_id = $2, accepted_at = clock_timestamp(), accepted_by = $3"
                       " WHERE id = $1", thread_id, post_id, user["id"])
    if modlog.acts_on_other(user, row["author_id"]):
        await modlog.record(conn, "thread.accepted", user["id"], thread_id=thread_id, post_id=post_id,
                            user_id=row["author_id"])
    event, thread = await _thread_updated(conn, thread_id)
    # The response's author hears of it (`accepted`); an acceptance withdrawn or moved takes its
    # notification back.
    recount: set[int] = set()
    if row["accepted_id"] is not None:
        recount = await notifications.withdraw_kind(conn, row["accepted_id"], "accepted")
    notified: list[dict[str, Any]] = []
    if post_id is not None:
        author_id = await conn.fetchval("SELECT author_id FROM posts WHERE id = $1", post_id)
        notified = await notifications.notify_one(conn, users.brief_of(user), author_id, "accepted", thread_id, post_id)
    frames = await reputation.recount(conn, _acceptance_reasons(touched, row["author_id"], responders),
                                      post_id if post_id is not None else row["accepted_id"], touched)
    return Written(thread, [event], notified, recount, feeds=[thread_id], user_frames=frames)


def _acceptance_reasons(touched: dict[int, int], asker: int, responders: dict[int, int]) -> dict[int, str]:
    """Why each user's reputation changes when an acceptance moves: the answers' authors (accepted) and the asker
    (accepter)."""
    reasons = {asker: "accepter"} if asker in touched else {}
    for author in responders.values():
        if author != asker:
            reasons[author] = "accepted"
    return reasons  # reputation.recount records a loss as accept_undone / accepter_undone


async def set_duplicate(conn: asyncpg.Connection, thread_id: int, user: asyncpg.Record,
                        of: int | None) -> Written[dict[str, Any]]:
    """Mark a thread a duplicate of another (moderator), or lift it with None: a thread.updated event and a
    `thread.duplicate` entry in the public log. A thread cannot be its own duplicate nor of a duplicate (422
    field `of`: the original must be a live thread that is no duplicate itself)."""
    row = await conn.fetchrow("SELECT author_id, deleted, duplicate_of FROM threads WHERE id = $1 FOR UPDATE",
                              thread_id)
    if row is None or row["deleted"]:
        raise NotFound(f"No thread {thread_id}")
    if of is not None:
        if of == thread_id:
            raise Invalid("A thread cannot be a duplicate of itself", field="of")
        original = await conn.fetchrow("SELECT deleted, duplicate_of FROM threads WHERE id = $1", of)
        if original is None or original["deleted"]:
            raise NotFound(f"No thread {of}", field="of")
        if original["duplicate_of"] is not None:
            raise Invalid(f"Thread {of} is itself a duplicate of thread {original['duplicate_of']}: name that one",
                          field="of")
    if of == row["duplicate_of"]:
        return Written(await get(conn, thread_id))
    await conn.execute("UPDATE threads SET duplicate_of = $2 WHERE id = $1", thread_id, of)
    await modlog.record(conn, "thread.duplicate", user["id"], thread_id=thread_id, user_id=row["author_id"],
                        reason=None if of is None else f"duplicate of thread {of}")
    event, thread = await _thread_updated(conn, thread_id)
    return Written(thread, [event], feeds=[thread_id])


async def _thread_updated(conn: asyncpg.Connection, thread_id: int) -> tuple[events.Event, dict[str, Any]]:
    """Store a thread.updated event of the thread as it now is (its Thread carries the new seq)."""
    thread: dict[str, Any] = {}

    async def data(seq: int) -> bytes:
        thread.update(await get(conn, thread_id))
        return encode(thread)
    return await events.append(conn, thread_id, "thread.updated", data), thread


async def touch(conn: asyncpg.Connection, thread_id: int) -> Written[None]:
    """A thread.updated event of the thread as it is (its seq moves: page caches drop it, watchers reread): what
    a change outside the thread's own rows makes it show differently (a silence, store/silence.py)."""
    event, _ = await _thread_updated(conn, thread_id)
    return Written(None, [event], feeds=[thread_id])


async def withdraw_deleted(conn: asyncpg.Connection, post_id: int) -> Written[None]:
    """After a post was deleted (same transaction): if it was its thread's accepted answer, withdraw it."""
    thread_id = await conn.fetchval(
        "UPDATE threads t SET accepted_id = NULL FROM posts p"
        " WHERE p.id = $1 AND p.deleted AND t.id = p.thread_id AND t.accepted_id = $1 AND NOT t.deleted"
        " RETURNING t.id", post_id)
    if thread_id is None:
        return Written(None)
    event, _ = await _thread_updated(conn, thread_id)
    return Written(None, [event], feeds=[thread_id])


# -- the sitemap: every live thread, oldest first, a page of them at a time ---------------------------

async def opened_since(conn: asyncpg.Connection | asyncpg.Pool, user_id: int, hours: float,
                       lock: bool = False) -> list[datetime]:
    """When the user opened each of their threads of the last `hours` (the new-account limit, server/trust.py).
    `lock` (inside the transaction that opens the next one): first take the author's new-thread lock, held to the
    commit, so two requests at once count each other's thread instead of both passing on the same count. An
    advisory lock, not the users row: the lock order elsewhere is threads → users (store/silence.py)."""
    if lock:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('parley:new-thread:' || $1::bigint, 0))",
                           user_id)
    rows = await conn.fetch("SELECT created_at FROM threads WHERE author_id = $1 AND created_at > now() - $2::interval"
                            " ORDER BY created_at", user_id, timedelta(hours=hours))
    return [r["created_at"] for r in rows]


async def live_count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return await conn.fetchval("SELECT count(*) FROM threads WHERE NOT deleted")  # type: ignore[no-any-return]


async def sitemap_page(conn: asyncpg.Connection | asyncpg.Pool, after_id: int, limit: int) -> list[asyncpg.Record]:
    """Live threads with ids above `after_id`, by id: (id, title, last_activity_at)."""
    return await conn.fetch(  # type: ignore[no-any-return]
        "SELECT id, title, last_activity_at FROM threads WHERE NOT deleted AND id > $1 ORDER BY id LIMIT $2",
        after_id, limit)


async def sitemap_starts(conn: asyncpg.Connection | asyncpg.Pool, per_page: int) -> list[int]:
    """Where each page of the sitemap starts: the id before its first thread (0 for the first page)."""
    rows = await conn.fetch(
        """SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM threads WHERE NOT deleted) s
           WHERE n % $1 = 0 ORDER BY id""", per_page)
    return [0, *(r["id"] for r in rows)]
