"""Full-text search over titles and posts (PostgreSQL tsvector, english stemming).

posts.search is kept by triggers in the transaction of each write (migration 0005_qa): a question's
vector holds its thread's title at weight A and its body at B, any other post its body; a deleted
post has none. Queries use websearch_to_tsquery (words, "phrases", -exclusion, or).
"""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from . import categories, posts, threads

SORTS = ("relevance", "newest")
QUERY = "websearch_to_tsquery('english', $1)"


# Relevance ranks at most this many matches, the newest: a word that matches a large part of the forum
# would otherwise have every match read and ranked for each page (bench/README.md, "Q&A at scale").
RANKED = 2000


def search_sql(sort: str, by_category: bool, by_author: bool, keyset: bool) -> str:
    """One page of matching post ids with their rank. $1 q, $2 limit, then category ids, author, cursor."""
    where = ["p.search @@ q.query", "NOT p.deleted", "NOT t.deleted"]
    n = 2
    if by_category:
        n += 1
        where.append(f"t.category_id = any(${n}::bigint[])")
    if by_author:
        n += 1
        where.append(f"p.author_id = ${n}")
    source = f"FROM (SELECT {QUERY} AS query) q, posts p JOIN threads t ON t.id = p.thread_id"
    if sort == "relevance":
        # The newest RANKED matches (for a common word an ordered scan of posts_pkey finds them at
        # once, for a rare one the GIN index does), then ranked: title (A) above body (B).
        page = f" WHERE (c.rank, c.id) < (${n + 1}::float8, ${n + 2}::bigint)" if keyset else ""
        return (f"SELECT c.id, c.rank FROM (SELECT p.id, ts_rank_cd(p.search, q.query)::float8 AS rank {source}"
                f" WHERE {' AND '.join(where)} ORDER BY p.id DESC LIMIT {RANKED}) c{page}"
                " ORDER BY c.rank DESC, c.id DESC LIMIT $2")
    # Newest first: for a common word, walking posts_pkey backwards finds a page at once; for a rare
    # one, the GIN index then a sort. Only a plan made for this q can tell (see search()).
    if keyset:
        where.append(f"p.id < ${n + 1}::bigint")
    return f"SELECT p.id, 0::float8 AS rank {source} WHERE {' AND '.join(where)} ORDER BY p.id DESC LIMIT $2"


def snippet_options() -> tuple[str, str, str]:
    """ts_headline options with fresh markers no post can contain (so they are escaped like any text)."""
    start, stop = "qs" + secrets.token_hex(8), "qe" + secrets.token_hex(8)
    options = (f"StartSel={start}, StopSel={stop}, MaxWords=35, MinWords=12, MaxFragments=2, "
               'FragmentDelimiter=" … "')
    return options, start, stop


# The body is HTML-escaped *before* ts_headline: its parser takes `<b>`-like text for tags and drops
# it, while the entities escaping makes are tokens it keeps whole. Then only our markers become tags.
ESCAPED_BODY = ("replace(replace(replace(replace(replace(p.body, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),"
                " '\"', '&quot;'), '''', '&#x27;')")


def mark(headline: str, start: str, stop: str) -> str:
    """The headline of escaped text with our markers made <mark> tags; anything unescaped is escaped again."""
    for raw, entity in (("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;")):
        headline = headline.replace(raw, entity)
    return headline.replace(start, "<mark>").replace(stop, "</mark>")


async def search(pool: asyncpg.Pool, q: str, category: str | None, author: str | None, sort: str, limit: int,
                 before: str | None, reader_id: int | None) -> dict[str, Any]:
    """{results: [{post, thread: {id, title, category}, snippet}…], next}; an unknown category or author
    matches nothing."""
    empty: dict[str, Any] = {"results": [], "next": None}
    args: list[Any] = [q, limit + 1]
    if before is not None:  # read first: a bad cursor is refused even when nothing would match
        if sort == "relevance":
            tag, rank, pid = threads.cursor_decode(before, "before", (str, float, int))
            cursor_args: list[Any] = [rank, pid]
        else:
            tag, pid = threads.cursor_decode(before, "before", (str, int))
            cursor_args = [pid]
        if tag != sort[0]:
            raise threads.unknown_cursor("before", "before is a cursor of another sort")
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        # Plan for this very q: how many posts a word matches decides between the GIN index and an
        # ordered scan, and a prepared statement's generic plan cannot know it.
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        tree = await categories.tree(conn)
        if category is not None:
            cat = tree.by_slug.get(category)
            if cat is None:
                return empty
            args.append(tree.descendants(cat["id"]))
        if author is not None:
            author_id = await conn.fetchval("SELECT id FROM users WHERE lower(username) = lower($1)", author)
            if author_id is None:
                return empty
            args.append(author_id)
        if before is not None:
            args += cursor_args
        hits = await conn.fetch(search_sql(sort, category is not None, author is not None, before is not None),
                                *args)
        more = len(hits) > limit
        hits = hits[:limit]
        ids = [h["id"] for h in hits]
        rows = {r["id"]: r for r in await conn.fetch(posts.POST_SELECT + " WHERE p.id = any($1::bigint[])", ids)}
        options, start, stop = snippet_options()
        heads = {r["id"]: r["h"] for r in await conn.fetch(
            f"SELECT p.id, ts_headline('english', {ESCAPED_BODY}, {QUERY}, $3) AS h FROM posts p"
            " WHERE p.id = any($2::bigint[])", q, ids, options)}
        thread_rows = {r["id"]: r for r in await conn.fetch(
            "SELECT id, title, category_id FROM threads WHERE id = any($1::bigint[])",
            list({r["thread_id"] for r in rows.values()}))}
        votes = await posts.my_votes(conn, reader_id, ids)
    results = []
    for pid in ids:
        row = rows[pid]
        t = thread_rows[row["thread_id"]]
        results.append({
            "post": posts.post_dict(row, votes.get(pid, 0)),
            "thread": {"id": t["id"], "title": t["title"], "category": tree.brief(t["category_id"])},
            "snippet": mark(heads[pid], start, stop),
        })
    nxt = None
    if more:
        last = hits[-1]
        nxt = (threads.cursor_encode("r", last["rank"], last["id"]) if sort == "relevance"
               else threads.cursor_encode("n", last["id"]))
    return {"results": results, "next": nxt}
