"""Similar questions (store/similar.py): recall@5 on a fixed paraphrase set (a regression guard), accepted answers
first, duplicates and deleted threads left out, and the endpoint's shape and bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from similar_pairs import ASKED, PAIRS

from api_support import check_error, check_thread, posted
from server.store import similar
from support import http
from support.api import Api, new_thread

# Measured on this set when it was written: 30 of 30, among 42 asked of which 12 are near misses (docs/api.md
# "Similar questions"); a change to the ranking that loses more than two of them fails here.
RECALL_AT_5_FLOOR = 28 / 30


async def _seed(url: str) -> list[int]:
    """ASKED as threads with their questions (the triggers make the search vectors); returns the thread ids."""
    conn = await asyncpg.connect(url)
    try:
        user = await conn.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES ('s', 'S', 'x')"
                                   " RETURNING id")
        cat = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('c', 'C') RETURNING id")
        ids = []
        for title, body in ASKED:
            tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title, seq) VALUES ($1, $2, $3, 1)"
                                      " RETURNING id", cat, user, title)
            await conn.execute("INSERT INTO posts (thread_id, kind, author_id, body, html, seq)"
                               " VALUES ($1, 'question', $2, $3, '', 1)", tid, user, body)
            ids.append(tid)
        return ids
    finally:
        await conn.close()


async def _found(url: str, queries: list[tuple[str, str]]) -> list[list[int]]:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        return [[t["id"] for t in await similar.similar(pool, title, body, timeout=10)] for title, body in queries]
    finally:
        await pool.close()


def test_recall_at_5_on_the_paraphrase_set(fresh_db):
    """For each paraphrased title the question it restates is among the 5 answered, for at least
    RECALL_AT_5_FLOOR of the set (recall@5 printed)."""
    ids = asyncio.run(_seed(fresh_db))
    found = asyncio.run(_found(fresh_db, [(title, body) for title, body, _ in PAIRS]))
    hits = [ids[target] in got for (_, _, target), got in zip(PAIRS, found, strict=True)]
    recall = sum(hits) / len(PAIRS)
    missed = [PAIRS[i][0] for i, hit in enumerate(hits) if not hit]
    print(f"similar questions: recall@5 = {sum(hits)}/{len(PAIRS)} = {recall:.3f}; missed: {missed}")
    assert all(len(got) <= 5 for got in found)
    assert recall >= RECALL_AT_5_FLOOR, (recall, missed)


def test_accepted_first_and_duplicates_left_out(server, forum):
    """Of the similar threads, those with an accepted answer come first; a duplicate and a deleted thread are not
    suggested; a blank title is 400; the answer holds Threads."""
    asker, helper, mod = Api(server.url).sign_up(), Api(server.url).sign_up(), forum["mod"]
    word = "zygomorphic"
    plain = new_thread(asker, forum["category"], f"{word} flowers in my garden")["thread"]
    solved = new_thread(asker, forum["category"], f"Are {word} flowers rare")["thread"]
    answer = posted(helper, solved["id"], "Quite common")
    assert asker.put(f"/api/threads/{solved['id']}/accepted", json={"post_id": answer["id"]}).status_code == 200
    dup = new_thread(asker, forum["category"], f"{word} flowers garden question")["thread"]
    assert mod.put(f"/api/threads/{dup['id']}/duplicate", json={"of": plain["id"]}).status_code == 200
    gone = new_thread(asker, forum["category"], f"{word} flowers again")
    assert mod.delete(f"/api/posts/{gone['question']['id']}").status_code == 204
    r = http.get(f"{server.url}/api/threads/similar", params={"title": f"{word} flowers in the garden"})
    assert r.status_code == 200, r.text
    threads = r.json()["threads"]
    for t in threads:
        check_thread(t)
    ids = [t["id"] for t in threads]
    assert ids[0] == solved["id"] and plain["id"] in ids, ids
    assert dup["id"] not in ids and gone["thread"]["id"] not in ids
    check_error(http.get(f"{server.url}/api/threads/similar", params={"title": "  "}), 400, field="title")
    check_error(http.get(f"{server.url}/api/threads/similar"), 400, field="title")
    odd: dict[str, Any] = {"title": "'\\ :* & | ! <-> ( )", "body": "x" * 25_000}
    assert http.get(f"{server.url}/api/threads/similar", params=odd).status_code == 200


def test_common_words_are_left_out_rarest_kept_first():
    """With statistics, words expected in more than WORD_MATCHES posts are not searched for, the rest are taken
    rarest first within MATCHES together; without statistics (a small forum) every word is searched for."""
    vocabulary = similar.Vocabulary()
    assert sorted(vocabulary.telling(["egg", "boil", "answer"])) == ["answer", "boil", "egg"]
    vocabulary.freqs = {"answer": 0.9, "boil": 0.004, "egg": 0.0095, "yolk": 0.006}
    vocabulary.rare, vocabulary.posts = 0.001, 400_000.0
    # answer: 360,000 posts (left out); unlisted "grey" 400, boil 1,600, yolk 2,400, egg 3,800: 4,400 + 3,800 > 8,000
    assert vocabulary.telling(["answer", "egg", "boil", "yolk", "grey"]) == ["grey", "boil", "yolk"]
    assert vocabulary.telling(["answer"]) == []
    vocabulary.posts = 400.0  # the same shares in a small forum: every posting list is short
    assert vocabulary.telling(["answer", "egg"]) == ["egg", "answer"]


async def test_statistics_name_a_forums_common_word(tx):
    """After ANALYZE, the vocabulary read from pg_stats knows a word in 5,000 questions as common (whatever else
    the database holds) and leaves it out, keeping a rare word."""
    user = await tx.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES ('voc', 'V', 'x')"
                             " RETURNING id")
    cat = await tx.fetchval("INSERT INTO categories (slug, name) VALUES ('voc', 'V') RETURNING id")
    await tx.execute("""
        WITH t AS (INSERT INTO threads (category_id, author_id, title, seq)
                   SELECT $1, $2, 'Ubiquitousword question ' || i, 1 FROM generate_series(1, 5000) i RETURNING id)
        INSERT INTO posts (thread_id, kind, author_id, body, html, seq)
        SELECT id, 'question', $2, 'ubiquitousword again', '', 1 FROM t""", cat, user)
    await tx.execute("ANALYZE posts")
    vocabulary = similar.Vocabulary()
    await vocabulary.refresh(tx)
    expected = vocabulary.freqs.get("ubiquitousword", 0) * vocabulary.posts
    assert vocabulary.posts >= 5000 and expected > similar.WORD_MATCHES, expected
    assert vocabulary.telling(["ubiquitousword", "zyzzyvaword"]) == ["zyzzyvaword"]
