"""Full-text search over titles and posts (PostgreSQL tsvector, english stemming).

posts.search is kept by triggers in the transaction of each write (migration 0005_qa): a question's
vector holds its thread's title at weight A and its body at B, any other post its body; a deleted
post has none. Queries use websearch_to_tsquery (words, "phrases", -exclusion, or).

Every part of a search has bounded work, whatever the query and however long the posts (issue 25):

* the query is parsed by PostgreSQL once, then read here (`terms`): more than MAX_TERMS search words is 422
  field `q` before anything is searched;
* matching (`@@`) is PostgreSQL's; a tsvector keeps at most 256 positions of a word, so a phrase costs at
  most MAX_TERMS × 256 steps a post;
* relevance is ts_rank of the OR of the query's distinct words: one pass over each word's positions
  (ts_rank_cd, and ts_rank of the query itself, cost up to ~100 ms a post for a long phrase);
* the snippet is an excerpt chosen here around the first word that looks like a match (SNIPPET characters,
  whatever the body's length), in which ts_headline only marks the words (HighlightAll: no search for
  the best fragment, whose cost grows ~2.5× with each word of a phrase: 7 s for 13 words on 20,000 characters);
* the statements share one time budget (each has what is left as its statement timeout): a search PostgreSQL
  cannot answer in time is cancelled and answered 422 field `q`. When the planner walks posts newest first for
  a query whose matches are in fact few, the walk is cut at WALK_SHARE of the budget and the GIN index finishes
  the search (`page`).
"""

from __future__ import annotations

import asyncio
import html
import re
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg

from .. import limits
from ..errors import Invalid
from . import categories, posts, threads

SORTS = ("relevance", "newest")

# Relevance ranks at most this many matches, the newest: a word that matches a large part of the forum
# would otherwise have every match read and ranked for each page (bench/README.md, "Q&A at scale").
RANKED = 2000
MAX_TERMS = 16  # search words of a query once parsed (stop words such as "the" are dropped by the parser)
SNIPPET = 240  # characters of a post shown in a result
SNIPPET_LEAD = 80  # …of them before the first match (a match nearer the start shows the post from its start)
SNIPPET_TRIES = 3  # excerpts tried per post, around the first words that look like a match


@dataclass(frozen=True)
class Filters:
    """What a query's operators ask beside its words (`operators()`): `tags` (every one on the thread), `user` (the
    post's author), `accepted` (threads with an accepted answer), `unanswered` (threads without a response),
    `in_title` (the words in the title only: questions, weight A of their vector)."""

    tags: tuple[str, ...] = ()
    user: str | None = None
    accepted: bool = False
    unanswered: bool = False
    in_title: bool = False

    def __bool__(self) -> bool:
        return bool(self.tags or self.user or self.accepted or self.unanswered or self.in_title)


def search_sql(sort: str, by_category: bool, by_author: bool, keyset: bool, *, by_tag: bool = False,
               accepted: bool = False, unanswered: bool = False, in_title: bool = False,
               words: bool = True) -> str:
    """One page of matching post ids with their rank. $1 the query (tsquery), $2 limit, $3 the query's words
    OR-ed (tsquery; relevance only), then category ids, author, (by_tag) the first tag's id and every tag's name,
    cursor. Without `words` (only operators: $1 and $3 unused but given) the questions of the matching threads,
    newest first, whatever the sort."""
    where = ["p.search @@ $1::tsquery" if words else "$1::text IS NOT NULL AND p.kind = 'question'",
             "NOT p.deleted", "NOT t.deleted", f"NOT {posts.HIDDEN}"]  # held or silenced: found by nobody
    n = 3 if sort == "relevance" else 2
    if not words and sort == "relevance":
        where[0] += " AND $3::text IS NOT NULL"
    if by_category:
        n += 1
        where.append(f"t.category_id = any(${n}::bigint[])")
    if by_author:
        n += 1
        where.append(f"p.author_id = ${n}")
    if by_tag:  # driven by the first tag's rows (thread_tags), every tag checked on the thread's own list
        where.append(f"t.id IN (SELECT x.thread_id FROM thread_tags x WHERE x.tag_id = ${n + 1}::bigint)"
                     f" AND t.tags @> ${n + 2}::text[]")
        n += 2
    if accepted:
        where.append("t.accepted_id IS NOT NULL")
    if unanswered:
        where.append("t.response_count = 0")
    if in_title and words:
        where.append("p.kind = 'question'")  # and the query's words carry weight A: the title (see titled())
    source = "FROM posts p JOIN threads t ON t.id = p.thread_id"
    if sort == "relevance" and words:
        # The newest RANKED matches (for a common word an ordered scan of posts_pkey finds them at
        # once, for a rare one the GIN index does), then ranked: title (A) above body (B).
        page = f" WHERE (c.rank, c.id) < (${n + 1}::float8, ${n + 2}::bigint)" if keyset else ""
        return (f"SELECT c.id, c.rank FROM (SELECT p.id, ts_rank(p.search, $3::tsquery)::float8 AS rank {source}"
                f" WHERE {' AND '.join(where)} ORDER BY p.id DESC LIMIT {RANKED}) c{page}"
                " ORDER BY c.rank DESC, c.id DESC LIMIT $2")
    # Newest first: for a common word, walking posts_pkey backwards finds a page at once; for a rare
    # one, the GIN index then a sort. Only a plan made for this q can tell (see search()).
    if keyset:
        # Without words under `relevance` every rank is 0: its cursor (rank, id) pages by id alone.
        where.append(f"p.id < ${n + 2 if sort == 'relevance' else n + 1}::bigint")
        if sort == "relevance":
            where.append(f"${n + 1}::float8 IS NOT NULL")
    return f"SELECT p.id, 0::float8 AS rank {source} WHERE {' AND '.join(where)} ORDER BY p.id DESC LIMIT $2"


# --- Operators -----------------------------------------------------------------------------------------------

# name:value outside double quotes, at a word's start; only these names are operators (any other `x:y` is words).
_OPERATOR = re.compile(r'(?<![^\s])(tag|user|is|in):([^\s"]*)', re.I)
_QUOTED = re.compile(r'"[^"]*"?')
TAG_NAME = re.compile(f"[{limits.TAG_CHARS}]{{1,{limits.TAG_MAX}}}")
MAX_TAGS = limits.TAGS_MAX  # a thread has at most 5: more distinct tag: operators match nothing


class NoMatch(Exception):
    """The operators cannot all hold for any post (a sixth tag, a malformed name): the answer is empty."""


def operators(q: str) -> tuple[str, Filters]:
    """The words of q without its operators, and what the operators ask. `tag:NAME` (any case; repeated: all of
    them), `user:NAME`, `is:accepted`, `is:unanswered`, `in:title`; an operator with another value, or inside a
    "phrase", is searched as words; one with no value (`tag:`) is dropped. Raises NoMatch when nothing can match.
    One regex pass over at most Q_MAX characters: bounded whatever is repeated."""
    out: list[str] = []
    tags: list[str] = []
    user: str | None = None
    flags = {"accepted": False, "unanswered": False, "in_title": False}
    pos = 0
    quoted = [(m.start(), m.end()) for m in _QUOTED.finditer(q)]

    def inside(i: int) -> bool:
        return any(a <= i < b for a, b in quoted)

    no_match = False
    for m in _OPERATOR.finditer(q):
        if inside(m.start()):
            continue
        name, value = m.group(1).lower(), m.group(2)
        if name == "is" and value.lower() in ("accepted", "unanswered"):
            flags[value.lower()] = True
        elif name == "in" and value.lower() == "title":
            flags["in_title"] = True
        elif name == "tag" and value:
            folded = value.lower() if value.isascii() else value
            if not TAG_NAME.fullmatch(folded):
                no_match = True
            elif folded not in tags:
                tags.append(folded)
        elif name == "user" and value:
            if user is not None and user.lower() != value.lower():
                no_match = True
            user = value
        elif value:  # a known name with a value it does not take: words
            continue
        out.append(q[pos:m.start()])
        pos = m.end()
    out.append(q[pos:])
    if no_match or len(tags) > MAX_TAGS:
        raise NoMatch
    return " ".join(part.strip() for part in out if part.strip()), Filters(tuple(tags), user, **flags)


_LEXEME = re.compile(r"('(?:[^'\\]|''|\\.)*')(:[*A-Da-d]+)?", re.S)


def titled(tsquery: str) -> str:
    """The tsquery (text form) with every word restricted to weight A: a question's title (migration 0005_qa)."""
    return _LEXEME.sub(lambda m: m.group(1) + ":" + ("*" if m.group(2) and "*" in m.group(2) else "") + "A",
                       tsquery)


# --- The query, as PostgreSQL parsed it -------------------------------------------------------------------

# The text form of a tsquery: 'lexeme' ('' is a quote, \ escapes; :* or weights may follow), ! & | <-> <N> ( ).
_TOKEN = re.compile(r"\s*(?:'((?:[^'\\]|''|\\.)*)'(?::[*A-Da-d]+)?|(<->|<\d+>|[!&|()]))", re.S)
_UNESCAPE = re.compile(r"''|\\(.)", re.S)


class Terms(NamedTuple):
    total: int  # every word of the query, excluded and repeated ones too
    words: tuple[str, ...]  # the distinct lexemes a match may contain (not under a NOT), in query order


def terms(tsquery: str) -> Terms:
    """The words of a tsquery's text form, and which of them are wanted (not excluded)."""
    tokens: list[tuple[str | None, str | None]] = []
    pos = 0
    while pos < len(tsquery):
        m = _TOKEN.match(tsquery, pos)
        if m is None:
            if tsquery[pos:].strip():
                raise ValueError(f"unexpected tsquery text at {pos}: {tsquery!r}")
            break
        lexeme = m.group(1)
        tokens.append((_UNESCAPE.sub(lambda e: e.group(1) or "'", lexeme) if lexeme is not None else None,
                       m.group(2)))
        pos = m.end()
    count, wanted = 0, []
    # What a NOT covers is the next operand or parenthesised group: a stack of "negated?" per open group.
    stack, pending = [False], False
    for lexeme, op in tokens:
        if op == "!":
            pending = not pending
        elif op == "(":
            stack.append(stack[-1] ^ pending)
            pending = False
        elif op == ")":
            stack.pop()
        elif op is None and lexeme is not None:
            count += 1
            negated = stack[-1] ^ pending
            pending = False
            if not negated and lexeme not in wanted:
                wanted.append(lexeme)
    return Terms(count, tuple(wanted))


def or_query(words: tuple[str, ...]) -> str:
    """A tsquery (text form) matching any of these lexemes."""
    return " | ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in words)


# --- Snippets ------------------------------------------------------------------------------------------------

def _stem_prefix(word: str) -> str:
    """What a word of the text starts with when its english stem is `word`: the stem itself, but for a final
    i or e the stemmer may have put there (happy → happi, hoping → hope)."""
    return word[:-1] if len(word) > 2 and word[-1] in "ie" else word


def matcher(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """A pattern finding, cheaply, the words of a text that may stem to one of `words` (a word start, then one
    of their prefixes): it only places the excerpt, PostgreSQL marks the words (exactly) in it."""
    if not words:
        return None
    prefixes = sorted({re.escape(_stem_prefix(w)) for w in words}, key=len, reverse=True)
    return re.compile(r"(?<![^\W_])(?:" + "|".join(prefixes) + ")", re.I)


def _word_start(body: str, i: int, limit: int) -> int:
    """i moved forward to the start of the next word (at most 40 characters, never past `limit`); a word that
    starts at i is kept whole (cutting at its start is no cut)."""
    if i <= 0 or body[i - 1].isspace():
        return max(i, 0)
    for j in range(i, min(i + 40, limit)):
        if body[j].isspace():
            return j + 1
    return i


def _word_end(body: str, i: int, limit: int) -> int:
    """The end i moved back to the end of the last whole word before it (at most 40 characters, never before
    `limit`)."""
    if i >= len(body) or body[i].isspace():
        return min(i, len(body))
    for j in range(i, max(i - 40, limit), -1):
        if body[j - 1].isspace():
            return j - 1
    return i


def excerpts(body: str, found: re.Pattern[str] | None) -> list[str]:
    """Up to SNIPPET_TRIES excerpts of at most SNIPPET characters, each around a place the query's words may
    match (the first ones, far enough apart to differ); the post's start when nothing looks like a match.
    Work: one regex scan of the body, stopped at the third place, and a few slices."""
    out: list[str] = []
    last_end = -1
    if found is not None:
        for m in found.finditer(body):
            if len(out) == SNIPPET_TRIES:
                break
            hit = m.start()
            if hit < last_end:
                continue  # in the excerpt before it
            start = 0 if hit <= SNIPPET - SNIPPET_LEAD else _word_start(body, hit - SNIPPET_LEAD, hit)
            end = _word_end(body, start + SNIPPET, m.end())
            out.append(body[start:end].strip())
            last_end = end
    if not out:
        out.append(body[:_word_end(body, SNIPPET, 1)].strip())
    return out


def snippet_options() -> tuple[str, str, str]:
    """ts_headline options with fresh markers no post can contain (so they are escaped like any text).
    HighlightAll: the excerpt is the headline, ts_headline only marks its words (no search for fragments)."""
    start, stop = "qs" + secrets.token_hex(8), "qe" + secrets.token_hex(8)
    return f"HighlightAll=true, StartSel={start}, StopSel={stop}", start, stop


def mark(headline: str, start: str, stop: str) -> str:
    """The headline of escaped text with our markers made <mark> tags; anything unescaped is escaped again."""
    for raw, entity in (("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;")):
        headline = headline.replace(raw, entity)
    return headline.replace(start, "<mark>").replace(stop, "</mark>")


async def snippets(conn: asyncpg.Connection, bodies: dict[int, str], words: tuple[str, ...]) -> dict[int, str]:
    """Each post's snippet: an excerpt (HTML-escaped) with the query's words in <mark>…</mark>.

    The body is HTML-escaped *before* ts_headline: its parser takes `<b>`-like text for tags and drops it,
    while the entities escaping makes are tokens it keeps whole. Then only our markers become tags. Of a
    post's excerpts the first one holding a match is shown, else its first."""
    found = matcher(words)
    tries = {pid: [html.escape(e) for e in excerpts(body, found)] for pid, body in bodies.items()}
    if not words or not tries:
        return {pid: texts[0] for pid, texts in tries.items()}
    options, start, stop = snippet_options()
    flat = [(pid, text) for pid, texts in tries.items() for text in texts]
    heads = await conn.fetch("SELECT ts_headline('english', e, $2::tsquery, $3) AS h"
                             " FROM unnest($1::text[]) WITH ORDINALITY AS x(e, n) ORDER BY n",
                             [text for _, text in flat], or_query(words), options)
    out: dict[int, str] = {}
    for (pid, _), row in zip(flat, heads, strict=True):
        if pid not in out or (start not in out[pid] and start in row["h"]):
            out[pid] = row["h"]
    return {pid: mark(h, start, stop) for pid, h in out.items()}


# --- The search ----------------------------------------------------------------------------------------------

# The plan that walks posts newest first, testing each post against the query: right when matches are many (a
# page is found at once), ruinous when they are few (every post is read). The planner tells the two apart by its
# estimate of how many posts match, which is far off for correlated words ("copper kettle whistles": 140 estimated,
# 20,000 real) and for ORs of words it keeps no statistics of.
WALK = "Index Scan Backward using posts_pkey"
WALK_SHARE = 0.4  # of the time budget, for the walk; then the GIN index, with the rest


AFTER_PAGE = 0.1  # seconds the statements after the page (posts, snippets, threads, votes; a few ms) have at least


class Budget:
    """The search's time, from its start: each statement may take what is left (PostgreSQL's statement_timeout,
    set before it), so the statements together stay within it."""

    def __init__(self, seconds: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.seconds = seconds
        self.deadline = self.loop.time() + seconds

    def left(self, share: float = 1.0, floor: float = 0.001) -> int:
        """Milliseconds for the next statement: `share` of the whole budget at most, what is left at most."""
        return max(1, round(1000 * max(floor, min(self.seconds * share, self.deadline - self.loop.time()))))


async def page(conn: asyncpg.Connection, sql: str, args: list[Any], budget: Budget) -> list[asyncpg.Record]:
    """The statement's rows within the budget (QueryCanceledError past it). When the planner walks posts newest
    first, the walk gets WALK_SHARE of the time; if it has not found its page by then the matches are few, and
    the same statement runs again with the walk forbidden (the GIN index finds few matches at once)."""
    plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + sql, *args))
    if WALK not in plan:
        await conn.execute(f"SET LOCAL statement_timeout = {budget.left()}")
        rows = await conn.fetch(sql, *args)
    else:
        try:
            async with conn.transaction():  # a savepoint: the cancelled walk does not end the search's transaction
                await conn.execute(f"SET LOCAL statement_timeout = {budget.left(WALK_SHARE)}")
                rows = await conn.fetch(sql, *args)
        except asyncpg.QueryCanceledError:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {budget.left()}; SET LOCAL enable_indexscan = off")
                rows = await conn.fetch(sql, *args)
    # What a released savepoint SET stays set: the rest of the search has every plan again, and what time is left.
    await conn.execute(f"SET LOCAL statement_timeout = {budget.left(floor=AFTER_PAGE)};"
                       " SET LOCAL enable_indexscan = on")
    return rows


def too_many_terms(count: int) -> Invalid:
    return Invalid(f"q has {count} search words; at most {MAX_TERMS} are searched for "
                   "(common words such as “the” do not count)", code="query_too_complex", field="q")


def too_slow() -> Invalid:
    return Invalid("This search takes too long to answer: use fewer, rarer or more specific words",
                   code="query_too_costly", field="q")


async def search(pool: asyncpg.Pool, q: str, category: str | None, author: str | None, sort: str, limit: int,
                 before: str | None, reader_id: int | None, timeout: float) -> dict[str, Any]:
    """{results: [{post, thread: {id, title, category}, snippet}…], next}; an unknown category or author
    matches nothing. The statements have `timeout` seconds together (then 422 field q), and at least AFTER_PAGE
    after the page of matches."""
    empty: dict[str, Any] = {"results": [], "next": None}
    if before is not None:  # read first: a bad cursor is refused even when nothing would match
        if sort == "relevance":
            tag, rank, pid = threads.cursor_decode(before, "before", (str, float, int))
            cursor_args: list[Any] = [rank, pid]
        else:
            tag, pid = threads.cursor_decode(before, "before", (str, int))
            cursor_args = [pid]
        if tag != sort[0]:
            raise threads.unknown_cursor("before", "before is a cursor of another sort")
    try:
        words_q, filters = operators(q)
    except NoMatch:
        return empty
    if filters.user is not None:
        if author is not None and author.lower() != filters.user.lower():
            return empty
        author = filters.user
    try:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            budget = Budget(timeout)  # from here: waiting for a connection is the slots' business (api/search.py)
            # Plan for this very q: how many posts a word matches decides between the GIN index and an
            # ordered scan, and a prepared statement's generic plan cannot know it.
            await conn.execute(f"SET LOCAL statement_timeout = {budget.left()};"
                               " SET LOCAL plan_cache_mode = force_custom_plan")
            query = await conn.fetchval("SELECT websearch_to_tsquery('english', $1)::text", words_q)
            parsed = terms(query)
            if parsed.total > MAX_TERMS:
                raise too_many_terms(parsed.total)
            words = parsed.total > 0
            if not words and not filters:  # only stop words or punctuation: nothing to look for
                return empty
            if filters.in_title and words:
                query = titled(query)
            args: list[Any] = [query, limit + 1]
            if sort == "relevance":
                args.append(or_query(parsed.words) if words else "")
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
            if filters.tags:
                first_tag = await conn.fetchval("SELECT id FROM tags WHERE name = $1", filters.tags[0])
                if first_tag is None:
                    return empty
                args += [first_tag, list(filters.tags)]
            if before is not None:
                args += cursor_args
            sql = search_sql(sort, category is not None, author is not None, before is not None,
                             by_tag=bool(filters.tags), accepted=filters.accepted, unanswered=filters.unanswered,
                             in_title=filters.in_title, words=words)
            hits = await page(conn, sql, args, budget)
            more = len(hits) > limit
            hits = hits[:limit]
            ids = [h["id"] for h in hits]
            rows = {r["id"]: r for r in await conn.fetch(posts.POST_SELECT + " WHERE p.id = any($1::bigint[])",
                                                          ids)}
            heads = await snippets(conn, {pid: rows[pid]["body"] for pid in ids}, parsed.words)
            thread_rows = {r["id"]: r for r in await conn.fetch(
                "SELECT id, title, category_id FROM threads WHERE id = any($1::bigint[])",
                list({r["thread_id"] for r in rows.values()}))}
            votes = await posts.my_votes(conn, reader_id, ids)
    except asyncpg.QueryCanceledError:  # the statement timeout (a client that left cancels the task instead)
        raise too_slow() from None
    results = []
    for pid in ids:
        row = rows[pid]
        t = thread_rows[row["thread_id"]]
        results.append({
            "post": posts.post_dict(row, votes.get(pid, 0)),
            "thread": {"id": t["id"], "title": t["title"], "category": tree.brief(t["category_id"])},
            "snippet": heads[pid],
        })
    nxt = None
    if more:
        last = hits[-1]
        nxt = (threads.cursor_encode("r", last["rank"], last["id"]) if sort == "relevance"
               else threads.cursor_encode("n", last["id"]))
    return {"results": results, "next": nxt}
