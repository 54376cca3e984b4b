"""Similar questions while one is being asked (GET /api/threads/similar; CONTRACT rev. 3).

From PostgreSQL alone, two ways of being alike, added up:

* full text: the question posts whose stored vector (title at weight A, body at B; migration 0005_qa) matches any
  telling word of the title and of the start of the body being typed, ranked by ts_rank (the newest CANDIDATES
  matches only; the posts_question_search index holds questions alone).
  A common word says little about which question this is, and its posting list is long (at 1M posts one such
  word matched 96 % of the questions, and reading them was the whole cost): words are taken rarest first while
  the posts they are expected in stay within WORD_MATCHES each and MATCHES together, by the lexeme
  frequencies PostgreSQL's own statistics keep for the column (pg_stats.most_common_elems, renewed by ANALYZE,
  read here at most every VOCABULARY_SECONDS) times the posts there are. A small forum keeps every word.
* trigrams: among those candidates, the titles most like the one typed (pg_trgm's similarity(), weighted by
  TITLE_WEIGHT). It ranks, it does not search: searching all titles for likeness read ~20,000 of them at 1M
  posts (the GIN trigram index narrows little for titles of common trigrams), and on the paraphrase set the
  full-text candidates already hold every answer (tests/unit/test_similar.py). A title of common words
  alone has no telling word and gets no suggestion.

The best MAX of the sum are answered, those with an accepted answer first. Duplicates are left out (their
original is the answer). One statement with a time budget: past it the answer is empty, never an error (the
ask form only loses its hints).
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from . import categories, threads

MAX = 5
BODY_START = 300  # characters of the body that count (the start says what it is about)
WORDS = 16  # distinct words of the title and body start searched for
CANDIDATES = 500  # full-text matches ranked (the newest)
TRIGRAM_CANDIDATES = 50  # of the full-text candidates, those whose titles are most alike get the title's weight
TITLE_WEIGHT = 2.0  # a title's trigram similarity (0–1) against ts_rank (mostly 0–0.6)

WORD_MATCHES = 4000  # a word expected in more posts than this is left out
MATCHES = 8000  # the words searched for together: expected in at most this many posts
VOCABULARY_SECONDS = 600.0

WORDS_SQL = f"""
SELECT coalesce(array_agg(lexeme ORDER BY first), '{{}}') FROM (
    SELECT lexeme, positions[1] AS first FROM unnest(to_tsvector('english', $1 || ' ' || $2))
    ORDER BY positions[1] LIMIT {WORDS}) w
"""
# most_common_elem_freqs ends with three more numbers (the least and the greatest frequency listed, and the share
# of null vectors); a word that is not listed is rarer than the least listed.
VOCABULARY_SQL = """
SELECT s.most_common_elems::text::text[] AS words, s.most_common_elem_freqs AS freqs,
       (SELECT c.reltuples FROM pg_class c WHERE c.oid = 'posts'::regclass) AS posts
FROM pg_stats s WHERE s.schemaname = current_schema() AND s.tablename = 'posts' AND s.attname = 'search'
"""

SIMILAR_SQL = f"""
WITH words AS (
    SELECT string_agg('''' || replace(replace(w, '\\', '\\\\'), '''', '''''') || '''', ' | ')::tsquery AS q
    FROM unnest($2::text[]) w
), fts AS (
    SELECT c.thread_id AS id, ts_rank(c.search, words.q)::float8 AS score FROM words, LATERAL (
        SELECT p.thread_id, p.search FROM posts p
        WHERE p.kind = 'question' AND NOT p.deleted AND p.search @@ words.q
        ORDER BY p.id DESC LIMIT {CANDIDATES}) c
    WHERE words.q IS NOT NULL
), tri AS (
    SELECT t.id, {TITLE_WEIGHT} * similarity(t.title, $1)::float8 AS score FROM threads t
    WHERE NOT t.deleted AND t.id IN (SELECT id FROM fts)
    ORDER BY similarity(t.title, $1) DESC LIMIT {TRIGRAM_CANDIDATES}
), scored AS (
    SELECT id, sum(score) AS score FROM (SELECT * FROM fts UNION ALL SELECT * FROM tri) s GROUP BY id
)
SELECT s.id, s.score FROM scored s JOIN threads t ON t.id = s.id
WHERE NOT t.deleted AND t.duplicate_of IS NULL
ORDER BY s.score DESC, s.id DESC LIMIT {MAX}
"""


class Vocabulary:
    """How common the forum's common words are among its posts (PostgreSQL's statistics), read again when old."""

    def __init__(self) -> None:
        self.freqs: dict[str, float] = {}
        self.rare = 0.0  # the share of posts a word that is not listed is taken to be in
        self.posts = 0.0  # how many posts there are (reltuples, kept by VACUUM and ANALYZE)
        self.read_at: float | None = None

    async def refresh(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if self.read_at is not None and now - self.read_at < VOCABULARY_SECONDS:
            return
        self.read_at = now
        row = await conn.fetchrow(VOCABULARY_SQL)
        if row is None or not row["words"] or not row["freqs"]:
            self.freqs, self.rare, self.posts = {}, 0.0, 0.0
            return
        self.freqs = dict(zip(row["words"], row["freqs"], strict=False))
        # PostgreSQL's own guess for an element its statistics do not list (ts_selfuncs.c): at most half the least
        # listed frequency, and at most DEFAULT_TS_MATCH_SEL.
        self.rare = min(0.005, float(row["freqs"][-3]) / 2)
        self.posts = max(float(row["posts"] or 0), 0.0)

    def telling(self, words: list[str]) -> list[str]:
        """The words worth searching for, rarest first: none expected in more than WORD_MATCHES posts, and
        together in at most MATCHES (a small forum keeps them all: every posting list is short there).

        Counted in posts, not questions: the statistics are the column's, over every post, and a word's share
        among questions can be far above its share among all posts (title words are only in questions), so
        only the posts' count bounds what the question index holds for it."""
        chosen: list[str] = []
        total = 0.0
        for freq, word in sorted((self.freqs.get(w, self.rare), w) for w in words):
            matches = freq * self.posts
            if matches > WORD_MATCHES or total + matches > MATCHES:
                break
            chosen.append(word)
            total += matches
        return chosen


async def similar(pool: asyncpg.Pool, title: str, body: str, timeout: float,
                  vocabulary: Vocabulary | None = None) -> list[dict[str, Any]]:
    """At most MAX threads like the question being asked, those with an accepted answer first (then by
    likeness). Within `timeout` seconds or none. `vocabulary`: the process's, kept between calls (else read now)."""
    vocabulary = vocabulary or Vocabulary()
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        # Planned for these very words (a generic plan cannot tell how many questions they are in).
        await conn.execute(f"SET LOCAL statement_timeout = {max(1, round(timeout * 1000))};"
                           " SET LOCAL plan_cache_mode = force_custom_plan")
        try:
            await vocabulary.refresh(conn)
            words = vocabulary.telling(await conn.fetchval(WORDS_SQL, title, body[:BODY_START]))
            found = await conn.fetch(SIMILAR_SQL, title, words)
        except asyncpg.QueryCanceledError:
            return []
        if not found:
            return []
        rows = {r["id"]: r for r in await threads.rows(conn, [r["id"] for r in found])}
        tree = await categories.tree(conn)
    ordered = [rows[r["id"]] for r in found if r["id"] in rows]
    ordered.sort(key=lambda r: r["accepted_id"] is None)  # stable: likeness order within each part
    return [threads.thread_dict(r, tree) for r in ordered]
