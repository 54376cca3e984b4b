"""Similar questions while one is being asked (GET /api/threads/similar; CONTRACT rev. 3).

From PostgreSQL alone, two ways of being alike, added up:

* full text: the question posts whose stored vector (title at weight A, body at B; migration 0005_qa) matches any
  word of the title and of the start of the body being typed, ranked by ts_rank (the newest CANDIDATES matches
  only, so a common word costs a bounded amount: the posts_question_search index holds questions alone);
* trigrams: threads whose title is like the one typed (pg_trgm's `%`, threads_title_trgm index), scored by
  similarity().

The best MAX of the sum are answered, those with an accepted answer first. Duplicates are left out (their
original is the answer). One statement with a time budget: past it the answer is empty, never an error (the
ask form only loses its hints).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from . import categories, posts, threads

MAX = 5
BODY_START = 300  # characters of the body that count (the start says what it is about)
WORDS = 16  # distinct words of the title and body start searched for
CANDIDATES = 500  # full-text matches ranked (the newest)
TRIGRAM_CANDIDATES = 50
TRIGRAM_THRESHOLD = 0.25  # pg_trgm.similarity_threshold for `%` (its default 0.3 misses short paraphrases)
TITLE_WEIGHT = 2.0  # a title's trigram similarity (0–1) against ts_rank (mostly 0–0.6)

SIMILAR_SQL = f"""
WITH words AS (
    SELECT string_agg('''' || replace(replace(w.lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | ')::tsquery AS q
    FROM (
        SELECT lexeme FROM unnest(to_tsvector('english', $1 || ' ' || $2)) ORDER BY positions[1] LIMIT {WORDS}) w
), fts AS (
    SELECT c.thread_id AS id, ts_rank(c.search, words.q)::float8 AS score FROM words, LATERAL (
        SELECT p.thread_id, p.search FROM posts p
        WHERE p.kind = 'question' AND NOT p.deleted AND NOT {posts.HIDDEN} AND p.search @@ words.q
        ORDER BY p.id DESC LIMIT {CANDIDATES}) c
), tri AS (
    SELECT t.id, {TITLE_WEIGHT} * similarity(t.title, $1)::float8 AS score FROM threads t
    WHERE NOT t.deleted AND t.title % $1
    ORDER BY similarity(t.title, $1) DESC LIMIT {TRIGRAM_CANDIDATES}
), scored AS (
    SELECT id, sum(score) AS score FROM (SELECT * FROM fts UNION ALL SELECT * FROM tri) s GROUP BY id
)
SELECT s.id, s.score FROM scored s JOIN threads t ON t.id = s.id
WHERE NOT t.deleted AND t.duplicate_of IS NULL
ORDER BY s.score DESC, s.id DESC LIMIT {MAX}
"""


async def similar(pool: asyncpg.Pool, title: str, body: str, timeout: float) -> list[dict[str, Any]]:
    """At most MAX threads like the question being asked, those with an accepted answer first (then by
    likeness). Within `timeout` seconds or none."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        # Planned for these very words (a generic plan cannot tell that `%` on a title is selective, and scans).
        await conn.execute(f"SET LOCAL statement_timeout = {max(1, round(timeout * 1000))};"
                           f" SET LOCAL pg_trgm.similarity_threshold = {TRIGRAM_THRESHOLD};"
                           " SET LOCAL plan_cache_mode = force_custom_plan")
        try:
            found = await conn.fetch(SIMILAR_SQL, title, body[:BODY_START])
        except asyncpg.QueryCanceledError:
            return []
        if not found:
            return []
        rows = {r["id"]: r for r in await threads.rows(conn, [r["id"] for r in found])}
        tree = await categories.tree(conn)
    ordered = [rows[r["id"]] for r in found if r["id"] in rows]
    ordered.sort(key=lambda r: r["accepted_id"] is None)  # stable: likeness order within each part
    return [threads.thread_dict(r, tree) for r in ordered]
