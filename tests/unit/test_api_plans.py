"""Query plans at 100k threads: every thread list, search and profile query uses an index (no Seq Scan)."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from server.store import profiles, search, similar, threads

FILL = """
INSERT INTO users (username, display_name, password_hash)
SELECT 'planner' || i, 'P', 'x' FROM generate_series(1, 200) i;
INSERT INTO categories (slug, name) VALUES ('root', 'Root'), ('b', 'B'), ('c', 'C'), ('d', 'D');
UPDATE categories SET parent_id = (SELECT id FROM categories WHERE slug = 'root') WHERE slug = 'b';
INSERT INTO threads (category_id, author_id, title, created_at, last_activity_at, response_count, score, seq)
SELECT (SELECT min(id) FROM categories) + i % 4, (SELECT min(id) FROM users) + i % 200,
       'Thread number ' || i || CASE WHEN i % 1000 = 0 THEN ' about kettles' ELSE '' END,
       now() - make_interval(secs => 100000 - i), now() - make_interval(secs => (i * 7919) % 100000),
       i % 3, (i * 31) % 50 - 10, 1
FROM generate_series(1, 100000) AS i;
INSERT INTO posts (thread_id, kind, author_id, body, html, score)
SELECT t.id, 'question', t.author_id, 'The body of question ' || t.id || ' on boiling water', '', t.score
FROM threads t;
INSERT INTO tags (name) VALUES ('common'), ('rare');
INSERT INTO thread_tags (tag_id, thread_id, last_activity_at, created_at, score, response_count)
SELECT (SELECT id FROM tags WHERE name = CASE WHEN t.id % 1000 = 0 THEN 'rare' ELSE 'common' END), t.id,
       t.last_activity_at, t.created_at, t.score, t.response_count
FROM threads t WHERE t.id % 3 = 0;
ANALYZE;
"""


def _scans(plan: Any) -> list[tuple[str, str | None, str | None]]:
    """(node type, relation) for every scan node of a JSON plan."""
    out = []
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            out.append((plan["Node Type"], plan["Relation Name"], plan.get("Index Name")))
        elif "Index Name" in plan:
            out.append((plan["Node Type"], None, plan["Index Name"]))
        for value in plan.values():
            out += _scans(value)
    elif isinstance(plan, list):
        for value in plan:
            out += _scans(value)
    return out


def _literal(value: Any) -> str:
    """A test constant as SQL (EXECUTE takes no bind parameters): ints, floats, id lists, times, plain words."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list) and value and isinstance(value[0], str):
        assert all(v.isalpha() for v in value)
        return "ARRAY[" + ",".join(f"'{v}'" for v in value) + "]::text[]"
    if isinstance(value, list):
        return "ARRAY[" + ",".join(str(int(v)) for v in value) + "]::bigint[]"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    assert isinstance(value, str) and (value.isalpha() or value == "")
    return f"'{value}'"


async def _plans(url: str, statements: list[tuple[str, list[Any]]]) -> list[tuple[str, str, list]]:
    """The plan of each statement, prepared as the server's pool prepares it, custom and generic."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(FILL)
        out = []
        for i, (sql, args) in enumerate(statements):
            await conn.execute(f"PREPARE s{i} AS {sql}")
            params = ", ".join(_literal(a) for a in args)
            for mode in ("force_custom_plan", "force_generic_plan"):
                await conn.execute(f"SET plan_cache_mode = {mode}")
                raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE s{i}({params})")
                out.append((sql, mode, _scans(json.loads(raw))))
        return out
    finally:
        await conn.close()


def _statements() -> list[tuple[str, list[Any]]]:
    now = datetime.now(UTC)
    cats = [1, 2]
    out = []
    for sort, filter_, by_cat, keyset in itertools.product(threads.LIST_SORTS, (None, "unanswered"),
                                                           (False, True), (False, True)):
        args: list[Any] = [21]
        if by_cat:
            args.append(cats)
        if keyset:
            args += [5 if sort == "top" else now, 50000]
        out.append((threads.list_query(sort, filter_, by_cat, keyset), args))
    for sort, filter_, by_cat, keyset in itertools.product(threads.LIST_SORTS, (None, "unanswered"),
                                                           (False, True), (False, True)):
        args = [21] + ([cats] if by_cat else []) + [2]  # the tag 'rare'
        if keyset:
            args += [5 if sort == "top" else now, 50000]
        out.append((threads.list_query(sort, filter_, by_cat, keyset, by_tag=True), args))
    for sort, by_cat, by_author, keyset in itertools.product(search.SORTS, (False, True), (False, True),
                                                             (False, True)):
        args = ["kettles", 21] + (["kettles"] if sort == "relevance" else [])  # the query, then its words OR-ed
        if by_cat:
            args.append(cats)
        if by_author:
            args.append(1)
        if keyset:
            args += [0.5, 50000] if sort == "relevance" else [50000]
        out.append((search.search_sql(sort, by_cat, by_author, keyset), args))
    out.append((profiles.user_posts_sql(False), [1, 21]))
    out.append((profiles.user_posts_sql(True), [1, 21, 50000]))
    out.append((similar.SIMILAR_SQL, ["kettles", ["kettles", "water"]]))  # the title, then its telling words
    # Operators: a tag with words, and operators alone (the questions of the tag's threads, newest first).
    out.append((search.search_sql("newest", False, False, False, by_tag=True), ["kettles", 21, 2, ["rare"]]))
    out.append((search.search_sql("newest", False, False, False, by_tag=True, words=False), ["", 21, 2, ["rare"]]))
    out.append((search.search_sql("relevance", False, False, True, by_tag=True, words=False, unanswered=True),
                ["", 21, "", 2, ["rare"], 0.0, 50000]))
    return out


@pytest.mark.timeout(300)
def test_no_sequential_scan_of_threads_or_posts_at_100k_threads(fresh_db):
    """EXPLAIN of every list (sort × filter × category × cursor, and by tag), search, profile and similar-questions
    query shows index scans only."""
    plans = asyncio.run(_plans(fresh_db, _statements()))
    assert len(plans) == 2 * (24 + 24 + 16 + 2 + 1 + 3)
    # The similar-questions statement is always planned for its values (store/similar.py: force_custom_plan).
    bad = [(sql, mode, scans) for sql, mode, scans in plans
           if not (sql == similar.SIMILAR_SQL and mode == "force_generic_plan")
           and any(node == "Seq Scan" and rel in ("threads", "posts") for node, rel, _ in scans)]
    assert not bad, "\n\n".join(f"{mode}: {sql}\n{scans}" for sql, mode, scans in bad)
    # And each list query really walks a threads index (not, say, a bitmap over the whole table then a sort).
    for sql, mode, scans in plans[:48]:
        assert any(rel == "threads" and node == "Index Scan" and index != "threads_pkey"
                   for node, rel, index in scans), (mode, sql, scans)
    # A tag's list walks its thread_tags index in the sort's order.
    for sql, mode, scans in plans[48:96]:
        assert any(rel == "thread_tags" and node in ("Index Scan", "Index Only Scan")
                   and index.startswith("thread_tags_") and index != "thread_tags_pkey"
                   for node, rel, index in scans), (mode, sql, scans)
