"""Posts: questions, responses and comments; edits with every revision kept; soft deletes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from ..errors import Conflict, Forbidden, Invalid, NotFound
from ..wire import decode, encode, event_frame, iso
from ..wire import my_vote as my_vote_frame
from . import Written, drafts, events, modlog, notifications, reputation, sessions, tags, users

log = logging.getLogger("parley.store")

POST_SELECT = f"""
SELECT p.id, p.thread_id, p.parent_id, p.kind, p.body, p.html, p.created_at, p.edited_at,
       p.revision, p.score, p.deleted, p.pending, {users.brief_columns("a", "author_")},
       {users.brief_columns("e", "editor_")}
FROM posts p JOIN users a ON a.id = p.author_id LEFT JOIN users e ON e.id = p.edited_by
"""

_ISO = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"  # = wire.iso()

# The contract's Post, declared once: each key with how SQL makes it (over posts p, its author a and its
# editor e, as in POST_SELECT) beside how Python makes it from a POST_SELECT row. post_dict() is the Python
# side, POST_JSON the SQL side (a statement that stores its event itself: a new post, _create_sql);
# tests/unit/test_write_path.py checks that both give the same Post for the same rows. A deleted post keeps
# its place with an empty body.
POST_FIELDS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("id", "p.id", lambda r: r["id"]),
    ("thread_id", "p.thread_id", lambda r: r["thread_id"]),
    ("parent_id", "p.parent_id", lambda r: r["parent_id"]),
    ("kind", "p.kind", lambda r: r["kind"]),
    ("author", users.brief_sql("a"), lambda r: users.brief(r, "author_")),
    ("body", "CASE WHEN p.deleted THEN '' ELSE p.body END", lambda r: "" if r["deleted"] else r["body"]),
    ("html", "CASE WHEN p.deleted THEN '' ELSE p.html END", lambda r: "" if r["deleted"] else r["html"]),
    ("created_at", _ISO.format("p.created_at"), lambda r: iso(r["created_at"])),
    ("edited_at", _ISO.format("p.edited_at"), lambda r: iso(r["edited_at"])),
    ("edited_by", users.brief_sql("e"), lambda r: users.brief(r, "editor_")),
    ("revision", "p.revision", lambda r: r["revision"]),
    ("score", "p.score", lambda r: r["score"]),
    ("my_vote", "0", lambda r: 0),  # the reader's, set by post_dict(); 0 in events (CONTRACT)
    ("deleted", "p.deleted", lambda r: r["deleted"]),
)

POST_JSON = "jsonb_build_object(" + ", ".join(f"'{key}', {sql}" for key, sql, _ in POST_FIELDS) + ")"


# Who may see a post: everyone, unless it is pending (held by the spam check) or its author is silenced
# (store/silence.py); then only moderators and the author. `visible(reader, moderator)` is SQL over the post `p`,
# with SQL for the reader's id (null: a guest) and whether they moderate; `reader_of(user)` gives those two
# values for a users row or a guest.
# The silenced are few: their ids are read once per statement (an InitPlan over the users_silenced index), so the
# rule is a filter on each post and never changes how a list or a search is planned.
HIDDEN = ("(p.pending OR p.author_id = any(coalesce((SELECT array_agg(s.id) FROM users s"
          " WHERE s.silenced_at IS NOT NULL), '{}'::bigint[])))")
Reader = tuple[int | None, bool]
PUBLIC: Reader = (None, False)


def visible(reader: str, moderator: str) -> str:
    return f"({moderator}::boolean OR (p.author_id = {reader}::bigint) IS TRUE OR NOT {HIDDEN})"


def reader_of(user: Any) -> Reader:
    return PUBLIC if user is None else (user["id"], bool(user["is_moderator"]))


def sees_hidden(user: Any) -> bool:
    """Whether this reader may see posts others may not (a moderator, a silenced author): their pages are read
    for them, never from the shared page cache."""
    return user is not None and (bool(user["is_moderator"]) or user["silenced_at"] is not None)


async def has_pending(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> bool:
    """Whether the user has posts held by the spam check (they see their pages read for them, not shared)."""
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM posts WHERE author_id = $1 AND pending"
                                    " AND NOT deleted)", user_id))


def post_dict(row: asyncpg.Record, my_vote: int = 0) -> dict[str, Any]:
    """The contract's Post from a POST_SELECT row, with the reader's vote."""
    post = {key: make(row) for key, _, make in POST_FIELDS}
    post["my_vote"] = my_vote
    if row["pending"]:  # only its author and moderators read it (visible()); the key only when true
        post["pending"] = True
    return post


async def get_row(conn: asyncpg.Connection | asyncpg.Pool, post_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(POST_SELECT + " WHERE p.id = $1", post_id)
    if row is None:
        raise NotFound(f"No post {post_id}")
    return row


async def my_votes(conn: asyncpg.Connection | asyncpg.Pool, user_id: int | None, post_ids: list[int]) -> dict[int, int]:
    if user_id is None or not post_ids:
        return {}
    rows = await conn.fetch("SELECT post_id, value FROM votes WHERE user_id = $1 AND post_id = any($2::bigint[])",
                            user_id, post_ids)
    return {r["post_id"]: r["value"] for r in rows}


def _create_sql(thread: str, notify_kind: str, draft: str) -> str:
    """Everything a new post writes, as ONE statement (docs/architecture.md, "one reply").

    `thread` is the CTE `t` (id, seq, title) that took the thread's next seq (events.take_seq): for a
    response or a question the UPDATE itself, whose row lock orders the thread's writers and whose WHERE
    refuses a locked or deleted thread (no row: nothing is written); for a comment the values its caller
    took the same way. `notify_kind` is what notifications.notify_sql() calls the post ($3, or 'mentions'
    for a question, which notifies only those it mentions). `draft` is the parameter holding the key of the
    writer's draft that this post sends (NULL: none): it is deleted by the same statement, which saves the
    reply a round trip (issue 33), and its old revision returned as draft_revision (null: there was none).
    $1 thread, $2 parent, $3 kind, $4 author, $5 body, $6 html, $7 mentioned user ids. Every CTE sees
    the snapshot from before the statement, so the poster's new follow row cannot make them a
    recipient (they are excluded anyway) and no notification of this post exists yet."""
    # The text is revision 1's, stored once, there (store/events.py); the statement returns it whole.
    stored = events.insert("p CROSS JOIN a LEFT JOIN users e ON e.id = p.edited_by", "p.thread_id, p.seq",
                           "post.created", POST_JSON, post=("p.id", "1", "$5::text", "$6::text"))
    return f"""
WITH t AS ({thread}),
p AS (
    INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, seq)
    SELECT t.id, CASE WHEN $3 = 'response'  -- a response's parent is the thread's question
                      THEN (SELECT id FROM posts WHERE thread_id = $1 AND kind = 'question') ELSE $2 END,
           $3, $4, $5, $6, t.seq FROM t
    RETURNING *
), r AS (
    INSERT INTO post_revisions (post_id, revision, body, html, editor_id, edited_at)
    SELECT id, 1, body, html, author_id, created_at FROM p
), a AS (
    SELECT {", ".join(users.BRIEF)} FROM users WHERE id = $4
), ev AS ({stored}
), f AS (  -- the poster follows the thread (unless they unfollowed it) and has read up to their post
    INSERT INTO thread_follows (user_id, thread_id, following) SELECT $4, t.id, true FROM t
    ON CONFLICT DO NOTHING
), rd AS (
    INSERT INTO thread_reads (user_id, thread_id, seq) SELECT $4, t.id, t.seq FROM t
    ON CONFLICT (user_id, thread_id) DO UPDATE SET seq = greatest(thread_reads.seq, EXCLUDED.seq), read_at = now()
), n AS ({notifications.notify_sql("$4", "$1", "(SELECT id FROM p)", "$7", notify_kind, "$4", "$2", new_post=True)}
), wh AS ({events.queue_webhooks("t", "t.id", "t.seq", "'post.created'")}
), dr AS (
    DELETE FROM drafts WHERE user_id = $4 AND key = {draft}::text AND EXISTS (SELECT 1 FROM t) RETURNING revision
)
SELECT p.id, t.seq, t.title, ev.data, {users.brief_columns("a", "author_")}, (SELECT count(*) FROM wh) AS webhooks,
       (SELECT revision FROM dr) AS draft_revision,
       coalesce((SELECT array_agg(n.id ORDER BY n.user_id) FROM n), '{{}}') AS n_id,
       coalesce((SELECT array_agg(n.user_id ORDER BY n.user_id) FROM n), '{{}}') AS n_user,
       coalesce((SELECT array_agg(n.kind ORDER BY n.user_id) FROM n), '{{}}') AS n_kind,
       coalesce((SELECT array_agg(n.created_at ORDER BY n.user_id) FROM n), '{{}}') AS n_created
FROM p, t, ev, a
"""


_OPEN = "NOT deleted AND NOT locked"  # a thread that takes new posts
# A duplicate of a live thread takes no new responses (comments still: CONTRACT rev. 3 "Duplicates").
NOT_DUPLICATE = ("NOT EXISTS (SELECT 1 FROM threads d WHERE d.id = threads.duplicate_of AND NOT d.deleted)")
_CREATE_QUESTION = _create_sql(events.take_seq("last_activity_at = now()", returning="id, seq, title"),
                               "'mentions'", "$8")
_CREATE_RESPONSE = _create_sql(
    events.take_seq("last_activity_at = now(), response_count = response_count + 1", f"{_OPEN} AND {NOT_DUPLICATE}",
                    returning="id, seq, title"), "$3", "$8")
_CREATE_COMMENT = _create_sql("SELECT $1::bigint AS id, $8::bigint AS seq, $9::text AS title", "$3", "$10")
_TAKE_FOR_COMMENT = events.take_seq("last_activity_at = now()", _OPEN, returning="seq, title")
# The same, taking the thread's seq only while a cached session holds (server/sessioncache.py): $9-$11 for a
# response (session key, users row version, idle seconds), $2-$4 for a comment's seq.
_CREATE_RESPONSE_GUARDED = _create_sql(
    events.take_seq("last_activity_at = now(), response_count = response_count + 1",
                    f"{_OPEN} AND {NOT_DUPLICATE} AND {sessions.guard_sql('$9', '$10', '$11')}",
                    returning="id, seq, title"), "$3", "$8")
_TAKE_FOR_COMMENT_GUARDED = events.take_seq("last_activity_at = now()",
                                            f"{_OPEN} AND {sessions.guard_sql('$2', '$3', '$4')}",
                                            returning="seq, title")

Guard = tuple[str, int, float]  # a cached session's (key, users row version, idle seconds): sessions.guard_sql


async def _refuse_write(conn: asyncpg.Connection, thread_id: int, guard: Guard | None = None) -> None:
    """Say why the thread took no write (a transaction around it rolls back): first a cached session that no
    longer holds (StaleSession: the request runs again from a fresh lookup), then the thread's state."""
    if guard is not None and not await sessions.guard_holds(conn, *guard):
        raise sessions.StaleSession()
    thread = await conn.fetchrow("SELECT locked, deleted, duplicate_of FROM threads WHERE id = $1", thread_id)
    if thread is None:
        raise NotFound(f"No thread {thread_id}")
    if thread["deleted"]:
        raise Conflict("This thread was deleted", code="thread_deleted")
    if thread["locked"]:
        raise Conflict("This thread is locked", code="thread_locked")
    raise Conflict(f"This question is a duplicate of thread {thread['duplicate_of']}: answer it there",
                   code="thread_duplicate")


async def create(conn: asyncpg.Connection, thread_id: int, user_id: int, body: str, parent_id: int | None,
                 html: str, idempotency_key: str | None = None,
                 mentioned: list[int] | None = None, draft: str | None = None,
                 guard: Guard | None = None) -> Written[tuple[dict[str, Any], bool]]:
    """A response (no parent) or a comment (parent = a response). value = (post, created).

    `mentioned`: the ids of the users the body @mentions (links already in `html`), notified here.
    `draft`: the key of the writer's draft this post sends, deleted with the post (and by an idempotent replay).
    `guard`: the writer came from the session cache: the post is written only while that session is live and
    their users row unchanged, checked by the statement that takes the thread's seq; else StaleSession, nothing
    written (server/sessioncache.py).
    A response without an idempotency key is one statement, so `conn` needs no transaction around it
    (the API gives it none: no BEGIN/COMMIT round trips); every other case opens its own transaction
    (a savepoint if the caller already has one)."""
    if idempotency_key is None and parent_id is None:
        return await _write(conn, thread_id, "response", user_id, body, None, html, mentioned, draft, guard)
    async with conn.transaction():
        if idempotency_key is not None:
            replay = await _claim_key(conn, thread_id, user_id, idempotency_key)
            if replay is not None and guard is not None and not await sessions.guard_holds(conn, *guard):
                raise sessions.StaleSession()  # a replay answers only a session that still holds, too
            if replay is not None:  # the draft goes as it did with the first request (a no-op, mostly)
                replayed: Written[tuple[dict[str, Any], bool]] = Written((replay, False))
                return replayed.merge(await drafts.discard(conn, user_id, draft)) if draft is not None else replayed
        kind = "response" if parent_id is None else "comment"
        written = await _write(conn, thread_id, kind, user_id, body, parent_id, html, mentioned, draft, guard)
        if idempotency_key is not None:
            await conn.execute("UPDATE idempotency_keys SET post_id = $4 WHERE user_id = $1 AND thread_id = $2"
                               " AND key = $3", user_id, thread_id, idempotency_key, written.value[0]["id"])
        return written


async def create_question(conn: asyncpg.Connection, thread_id: int, user_id: int, body: str, html: str,
                          mentioned: list[int] | None = None) -> Written[tuple[dict[str, Any], bool]]:
    """The question of a thread just inserted (seq 0) in the caller's transaction: its event 1, written by
    the same statement as every other new post."""
    return await _write(conn, thread_id, "question", user_id, body, None, html, mentioned)


async def _claim_key(conn: asyncpg.Connection, thread_id: int, user_id: int, key: str) -> dict[str, Any] | None:
    """Claim an idempotency key for a new post; or the post an earlier request with it made."""
    # The thread first: a key never answers for a thread that is gone or never was.
    thread = await conn.fetchrow("SELECT deleted FROM threads WHERE id = $1", thread_id)
    if thread is None:
        raise NotFound(f"No thread {thread_id}")
    if thread["deleted"]:
        raise Conflict("This thread was deleted", code="thread_deleted")
    # A key belongs to (user, thread). Waits for a concurrent request with the same key to finish
    # (unique index), then sees its row.
    inserted = await conn.fetchval(
        "INSERT INTO idempotency_keys (user_id, thread_id, key) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING 1", user_id, thread_id, key)
    if inserted is not None:
        return None
    post_id = await conn.fetchval(
        "SELECT post_id FROM idempotency_keys WHERE user_id = $1 AND thread_id = $2 AND key = $3",
        user_id, thread_id, key)
    if post_id is None:
        raise Conflict("The first request with this key is still in flight", code="idempotency_in_progress")
    first = await get_row(conn, post_id)
    if first["deleted"]:  # a replay never shows a deleted post, nor makes a second one
        raise Conflict("The post this key made was deleted", code="post_deleted")
    return post_dict(first)


async def _write(conn: asyncpg.Connection, thread_id: int, kind: str, user_id: int, body: str,
                 parent_id: int | None, html: str,
                 mentioned: list[int] | None, draft: str | None = None,
                 guard: Guard | None = None) -> Written[tuple[dict[str, Any], bool]]:
    """The one path of every new post: question, response or comment (`guard`: see create; not for a question)."""
    if kind != "comment":
        args: tuple[Any, ...] = (thread_id, None, kind, user_id, body, html, mentioned or [], draft)
        if kind == "question":
            row = await conn.fetchrow(_CREATE_QUESTION, *args)
        elif guard is None:
            row = await conn.fetchrow(_CREATE_RESPONSE, *args)
        else:
            row = await conn.fetchrow(_CREATE_RESPONSE_GUARDED, *args, guard[0], str(guard[1]), guard[2])
        if row is None:
            await _refuse_write(conn, thread_id, guard)
    else:
        # A comment takes the seq first, then checks its parent under the thread's lock, so a response
        # deleted meanwhile (its delete locks the thread too) is seen as deleted.
        if guard is None:
            taken = await conn.fetchrow(_TAKE_FOR_COMMENT, thread_id)
        else:
            taken = await conn.fetchrow(_TAKE_FOR_COMMENT_GUARDED, thread_id, guard[0], str(guard[1]), guard[2])
        if taken is None:
            await _refuse_write(conn, thread_id, guard)
        parent = await conn.fetchrow("SELECT thread_id, kind, deleted FROM posts WHERE id = $1", parent_id)
        if parent is None or parent["thread_id"] != thread_id:
            raise NotFound(f"No post {parent_id} in this thread", field="parent_id")
        if parent["kind"] != "response":
            raise Invalid("Comments go under a response; comments do not nest", field="parent_id")
        if parent["deleted"]:
            raise Conflict("That response was deleted", code="post_deleted")
        row = await conn.fetchrow(_CREATE_COMMENT, thread_id, parent_id, "comment", user_id, body, html,
                                  mentioned or [], taken["seq"], taken["title"], draft)
    data = row["data"].encode()
    post = decode(data)
    notified = notifications.Notified(row["n_id"], row["n_user"], row["n_kind"], row["n_created"],
                                      users.brief_of(row, "author_"), {"id": thread_id, "title": row["title"]},
                                      row["id"])
    event = events.Event(thread_id, row["seq"], event_frame(thread_id, row["seq"], "post.created", data),
                         row["webhooks"])
    written = Written((post, True), [event], notified, feeds=[thread_id])
    if draft is not None:
        written.merge(drafts.discarded(user_id, draft, row["draft_revision"]))
    return written


async def comment_owners(conn: asyncpg.Connection | asyncpg.Pool, parent_id: int) -> set[int] | None:
    """Who may always comment under `parent_id`: its author and its thread's asker (CONTRACT "Privileges");
    None for a post nobody has (the write then says 404)."""
    row = await conn.fetchrow("SELECT p.author_id, t.author_id AS asker FROM posts p JOIN threads t"
                              " ON t.id = p.thread_id WHERE p.id = $1", parent_id)
    return None if row is None else {row["author_id"], row["asker"]}


def may_change(user: asyncpg.Record, author_id: int) -> bool:
    return user["is_moderator"] or user["id"] == author_id


async def _lock_thread_of(conn: asyncpg.Connection, thread_id: int, post_id: int, user: asyncpg.Record) -> None:
    """Lock the thread of a post being changed (it orders the change with the thread's other writes) and
    refuse a deleted thread (the post is gone with it) or a locked one (unless a moderator changes it)."""
    thread = await conn.fetchrow("SELECT locked, deleted FROM threads WHERE id = $1 FOR UPDATE", thread_id)
    if thread["deleted"]:
        raise NotFound(f"No post {post_id}")
    if thread["locked"] and not user["is_moderator"]:
        raise Conflict("This thread is locked", code="thread_locked")


async def edit(conn: asyncpg.Connection, post_id: int, user: asyncpg.Record, body: str,
               revision: int | None, html: str,
               mentioned: list[int] | None = None, edit_others: bool = False) -> Written[dict[str, Any]]:
    """A new revision of a post; a stale `revision` is a 409 (someone edited it meanwhile).

    `edit_others`: the editor holds that privilege (server/privileges.py), so may edit anyone's post.
    Users the new body @mentions who were not notified of this post yet are notified now."""
    row = await conn.fetchrow("SELECT thread_id, author_id, revision, deleted FROM posts WHERE id = $1", post_id)
    if row is None:
        raise NotFound(f"No post {post_id}")
    if not may_change(user, row["author_id"]) and not edit_others:
        raise Forbidden("Only the author, a moderator or a holder of edit_others can edit this post",
                        code="privilege")
    await _lock_thread_of(conn, row["thread_id"], post_id, user)
    current = await conn.fetchrow("SELECT revision, deleted FROM posts WHERE id = $1", post_id)
    if current["deleted"]:
        raise Conflict("This post was deleted", code="post_deleted")
    if revision is not None and revision != current["revision"]:
        raise Conflict(f"The post changed meanwhile (now at revision {current['revision']})",
                       code="stale_revision", field="revision")
    await conn.execute(
        "UPDATE posts SET body = $2, html = $3, revision = revision + 1, edited_at = now(), edited_by = $4"
        " WHERE id = $1", post_id, body, html, user["id"])
    await conn.execute(
        "INSERT INTO post_revisions (post_id, revision, body, html, editor_id, edited_at)"
        " SELECT id, revision, body, html, edited_by, edited_at FROM posts WHERE id = $1", post_id)
    if modlog.acts_on_other(user, row["author_id"]):
        await modlog.record(conn, "post.edited", user["id"], thread_id=row["thread_id"], post_id=post_id,
                            user_id=row["author_id"])
    post = post_dict(await get_row(conn, post_id))
    event = await events.append_post(conn, row["thread_id"], "post.edited", post)
    notified = []
    if mentioned:
        notified = await notifications.notify(conn, users.brief_of(user), row["thread_id"], post_id, "mentions",
                                              row["author_id"], mentioned)
    return Written(post, [event], notified)


async def delete(conn: asyncpg.Connection, post_id: int, user: asyncpg.Record) -> Written[None]:
    """Soft-delete a post; deleting the question deletes the thread (moderators only)."""
    row = await conn.fetchrow("SELECT thread_id, author_id, kind, deleted FROM posts WHERE id = $1", post_id)
    if row is None:
        raise NotFound(f"No post {post_id}")
    if not may_change(user, row["author_id"]):
        raise Forbidden("Only the author or a moderator can delete this post")
    if row["kind"] == "question" and not user["is_moderator"]:
        raise Forbidden("Only a moderator can delete a whole thread")
    await _lock_thread_of(conn, row["thread_id"], post_id, user)
    if await conn.fetchval("SELECT deleted FROM posts WHERE id = $1", post_id):
        return Written(None)  # already gone: deleting twice is not an error
    return await _delete(conn, post_id, row, user)


async def erase(conn: asyncpg.Connection, post_id: int, author: asyncpg.Record) -> Written[None]:
    """Its author's account is deleted with erase_posts (CONTRACT "Leaving"): the post's text goes as a deletion
    takes it, but a question leaves its thread in place (the thread and others' posts stay). The thread is locked
    first, as every write to it is; a post already deleted is left alone."""
    row = await conn.fetchrow("SELECT thread_id, author_id, kind, deleted FROM posts WHERE id = $1", post_id)
    await conn.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", row["thread_id"])
    if await conn.fetchval("SELECT deleted FROM posts WHERE id = $1", post_id):
        return Written(None)
    return await _delete(conn, post_id, row, author, keep_thread=True)


async def _delete(conn: asyncpg.Connection, post_id: int, row: asyncpg.Record, user: asyncpg.Record,
                  keep_thread: bool = False) -> Written[None]:
    touched = await reputation.locked_for_post(conn, post_id)  # before it goes: who earned by it
    await conn.execute("UPDATE posts SET deleted = true WHERE id = $1", post_id)
    await events.scrub_post(conn, row["thread_id"], post_id)  # its text leaves the backlog too
    recount = await notifications.withdraw_post(conn, post_id)
    if row["kind"] == "response":
        # Floored at 0, and logged with its ids when the floor is met: a count must never leave the contract's
        # range. It was met once, by rows written by hand: a test had inserted 10,000 responses with SQL without
        # counting them, and the schemathesis run in the same database deleted one (-1 in a list). Only rows
        # written outside this module can do that; the log names them.
        before = await conn.fetchval(
            "UPDATE threads t SET response_count = greatest(t.response_count - 1, 0)"
            " FROM (SELECT response_count FROM threads WHERE id = $1) o WHERE t.id = $1 RETURNING o.response_count",
            row["thread_id"])
        if before is not None and before <= 0:
            log.warning("response count already %s before deleting response %s of thread %s (kept at 0)",
                        before, post_id, row["thread_id"])
    elif row["kind"] == "question" and not keep_thread:
        await conn.execute("UPDATE threads SET deleted = true WHERE id = $1", row["thread_id"])
        recount |= await notifications.withdraw_thread(conn, row["thread_id"])
    if modlog.acts_on_other(user, row["author_id"]):
        await modlog.record(conn, "post.deleted", user["id"], thread_id=row["thread_id"], post_id=post_id,
                            user_id=row["author_id"])
    event = await events.append(conn, row["thread_id"], "post.deleted", encode({"id": post_id}))
    frames = await reputation.recount(conn, {uid: "post_deleted" for uid in touched}, post_id, touched)
    return Written(None, [event], recount=recount, feeds=[row["thread_id"]], user_frames=frames)


# One answer of revisions holds about this many bytes of bodies and HTML (at least one revision);
# `next` (a revision number, passed back as `after`) then says where to go on.
REVISION_BYTES = 1 << 20


async def revisions(conn: asyncpg.Connection | asyncpg.Pool, post_id: int,
                    after: int = 0) -> tuple[list[dict[str, Any]], int | None]:
    """(revisions after `after`, oldest first, within REVISION_BYTES; the `after` of the next page or None)."""
    post = await conn.fetchrow(
        "SELECT p.deleted, t.deleted AS thread_deleted FROM posts p JOIN threads t ON t.id = p.thread_id"
        " WHERE p.id = $1", post_id)
    if post is None or post["thread_deleted"]:
        raise NotFound(f"No post {post_id}")
    if post["deleted"]:
        return [], None
    rows = await conn.fetch(
        """
        SELECT * FROM (
            SELECT r.revision, r.body, r.html, r.edited_at, u.id, u.username, u.display_name, u.avatar_url,
                   octet_length(r.body) + octet_length(r.html) AS size,
                   sum(octet_length(r.body) + octet_length(r.html)) OVER (ORDER BY r.revision) AS upto,
                   count(*) OVER () AS total
            FROM post_revisions r JOIN users u ON u.id = r.editor_id
            WHERE r.post_id = $1 AND r.revision > $2
        ) x WHERE upto - size < $3 ORDER BY revision
        """, post_id, after, REVISION_BYTES)
    more = bool(rows) and rows[0]["total"] > len(rows)
    return [{"revision": r["revision"], "body": r["body"], "html": r["html"],
             "edited_by": users.brief(r),
             "edited_at": iso(r["edited_at"])} for r in rows], rows[-1]["revision"] if more else None


async def vote(conn: asyncpg.Connection, post_id: int, user_id: int, value: int) -> Written[dict[str, Any]]:
    """Set the user's vote (-1, 0 = none, 1); the score changes by the difference, exactly."""
    row = await conn.fetchrow("SELECT thread_id, author_id, kind, deleted FROM posts WHERE id = $1", post_id)
    if row is None:
        raise NotFound(f"No post {post_id}")
    if row["author_id"] == user_id:
        raise Forbidden("You cannot vote on your own post", code="own_post")
    # Lock the thread row first: every write to a thread takes it, so votes are serialized with all else.
    thread = await conn.fetchrow("SELECT deleted FROM threads WHERE id = $1 FOR UPDATE", row["thread_id"])
    if thread["deleted"]:
        raise NotFound(f"No post {post_id}")
    if await conn.fetchval("SELECT deleted FROM posts WHERE id = $1", post_id):
        raise Conflict("This post was deleted", code="post_deleted")
    old = await conn.fetchval("SELECT value FROM votes WHERE post_id = $1 AND user_id = $2", post_id, user_id) or 0
    if old == value:
        score = await conn.fetchval("SELECT score FROM posts WHERE id = $1", post_id)
        return Written({"post_id": post_id, "score": score, "my_vote": value})
    # The author's reputation (store/reputation.py): their row is locked before the vote is stamped, so votes
    # on their posts are applied in the order they were made.
    earns = row["kind"] in reputation.EARNING_KINDS
    author = row["author_id"]
    current = (await reputation.lock(conn, [author])).get(author) if earns else None
    if value == 0:
        await conn.execute("DELETE FROM votes WHERE post_id = $1 AND user_id = $2", post_id, user_id)
    else:
        await reputation.stamp_vote(conn, post_id, user_id, value)
    score = await conn.fetchval("UPDATE posts SET score = score + $2 WHERE id = $1 RETURNING score",
                                post_id, value - old)
    frames: list[tuple[int, bytes]] = []
    if current is not None and old == 0:
        frames = await reputation.vote_added(conn, author, current, post_id, user_id, row["kind"], value)
    elif current is not None:
        frames = await reputation.recount(conn, {author: "vote_undone" if value == 0 else "vote_changed"}, post_id,
                                          {author: current})
    event = await events.append(conn, row["thread_id"], "vote.changed", encode({"post_id": post_id, "score": score}))
    # The voter's other tabs hear their own vote (the event is the same for everyone: my_vote 0).
    mine = (user_id, my_vote_frame(row["thread_id"], post_id, score, value))
    return Written({"post_id": post_id, "score": score, "my_vote": value}, [event], user_frames=[mine, *frames])



# -- posts held by the spam check (server/spamcheck.py; docs/moderation.md "Spam check") ------------------

async def create_pending(conn: asyncpg.Connection, thread_id: int, user_id: int, body: str, parent_id: int | None,
                         html: str, question: bool = False,
                         idempotency_key: str | None = None) -> Written[tuple[dict[str, Any], bool]]:
    """A response, comment or (`question`: of a thread just inserted, threads.create) question the checker called
    spam: stored with its revision 1 but pending, with no event, no notification and no count; only its author and
    moderators see it until a moderator approves it (approve). An `idempotency_key` is claimed as create() claims
    it, so a retry answers this same held post (value (post, False)) instead of holding a second one."""
    async with conn.transaction():
        if idempotency_key is not None:
            replay = await _claim_key(conn, thread_id, user_id, idempotency_key)
            if replay is not None:
                return Written((replay, False))
        thread = await conn.fetchrow(f"SELECT seq FROM threads WHERE id = $1 AND {_OPEN}"
                                     f"{'' if parent_id is not None else ' AND ' + NOT_DUPLICATE} FOR UPDATE",
                                     thread_id)
        if thread is None:
            await _refuse_write(conn, thread_id)
        kind = "question" if question else "response" if parent_id is None else "comment"
        if question:
            pass
        elif parent_id is not None:
            parent = await conn.fetchrow("SELECT thread_id, kind, deleted FROM posts WHERE id = $1", parent_id)
            if parent is None or parent["thread_id"] != thread_id:
                raise NotFound(f"No post {parent_id} in this thread", field="parent_id")
            if parent["kind"] != "response":
                raise Invalid("Comments go under a response; comments do not nest", field="parent_id")
            if parent["deleted"]:
                raise Conflict("That response was deleted", code="post_deleted")
        else:
            parent_id = await conn.fetchval("SELECT id FROM posts WHERE thread_id = $1 AND kind = 'question'",
                                            thread_id)
        post_id = await conn.fetchval(
            "INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, seq, pending)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, true) RETURNING id", thread_id, parent_id, kind, user_id, body, html,
            thread["seq"])
        await conn.execute("INSERT INTO post_revisions (post_id, revision, body, html, editor_id, edited_at)"
                           " SELECT id, 1, body, html, author_id, created_at FROM posts WHERE id = $1", post_id)
        if idempotency_key is not None:
            await conn.execute("UPDATE idempotency_keys SET post_id = $4 WHERE user_id = $1 AND thread_id = $2"
                               " AND key = $3", user_id, thread_id, idempotency_key, post_id)
        return Written((post_dict(await get_row(conn, post_id)), True))


async def approve(conn: asyncpg.Connection, post_id: int, moderator: asyncpg.Record,
                  approved: bool) -> Written[dict[str, Any]]:
    """A moderator's verdict on a pending post: published now (its post.created event, its notifications, the
    thread's counts, as if it had just been written) or deleted (no one else ever heard of it: no event)."""
    row = await conn.fetchrow("SELECT thread_id, kind, author_id, pending, deleted FROM posts WHERE id = $1", post_id)
    if row is None:
        raise NotFound(f"No post {post_id}")
    thread = await conn.fetchrow("SELECT deleted FROM threads WHERE id = $1 FOR UPDATE", row["thread_id"])
    if thread["deleted"]:
        raise NotFound(f"No post {post_id}")
    if not row["pending"] or row["deleted"]:
        raise Conflict("This post is not waiting for approval", code="not_pending")
    thread_id = row["thread_id"]
    if not approved:
        # Still pending, so hidden as before (not even a deleted post's placeholder: nobody heard of it).
        await conn.execute("UPDATE posts SET deleted = true WHERE id = $1", post_id)
        await modlog.record(conn, "post.deleted", moderator["id"], thread_id=thread_id, post_id=post_id,
                            user_id=row["author_id"], reason="spam (held by the spam check)")
        return Written(post_dict(await get_row(conn, post_id)))
    await conn.execute("UPDATE posts SET pending = false, created_at = now() WHERE id = $1", post_id)
    await conn.execute("UPDATE post_revisions SET edited_at = now() WHERE post_id = $1 AND revision = 1", post_id)
    counts = "response_count = response_count + 1, " if row["kind"] == "response" else ""
    await conn.execute(f"UPDATE threads SET {counts}last_activity_at = now(), held = false WHERE id = $1", thread_id)
    post = post_dict(await get_row(conn, post_id))
    event = await events.append_post(conn, thread_id, "post.created", post)
    await conn.execute("UPDATE posts SET seq = $2 WHERE id = $1", post_id, event.seq)
    author = row["author_id"]
    await conn.execute("INSERT INTO thread_follows (user_id, thread_id, following) VALUES ($1, $2, true)"
                       " ON CONFLICT DO NOTHING", author, thread_id)
    mentioned = await notifications.mentioned_in(conn, post["html"])
    kind = "mentions" if row["kind"] == "question" else row["kind"]  # a question notifies those it mentions
    notified = await notifications.notify(conn, post["author"], thread_id, post_id, kind, author, mentioned)
    if row["kind"] == "question":  # its tags' followers hear of it now, as they would have when it was asked
        held = await conn.fetchrow("SELECT title, tags FROM threads WHERE id = $1", thread_id)
        notified = [*notified, *await tags.notify_followers(conn, post["author"], thread_id, held["title"], post_id,
                                                            list(held["tags"]))]
    return Written(post, [event], notified, feeds=[thread_id])
