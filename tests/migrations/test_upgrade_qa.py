"""Upgrading to the Q&A migration keeps the data and makes it usable: scores, accepted_id, search, profiles."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from server import migrations
from support.api import Api

QA = next(m.version for m in migrations.available() if m.name == "qa")

# A forum as the release before left it: two users, a thread with a voted question, responses (one
# deleted), a comment, and a second thread in another category.
FILL = """
INSERT INTO users (id, username, display_name, password_hash) VALUES
    (1, 'olda', 'Old A', 'x'), (2, 'oldb', 'Old B', 'x'), (3, 'oldc', 'Old C', 'x');
INSERT INTO categories (id, slug, name) VALUES (1, 'old', 'Old'), (2, 'older', 'Older');
INSERT INTO threads (id, category_id, author_id, title, response_count, seq, created_at, last_activity_at) VALUES
    (1, 1, 1, 'Teapots that whistle', 1, 6, now() - interval '2 days', now() - interval '1 day'),
    (2, 2, 2, 'Another question', 0, 1, now() - interval '1 day', now() - interval '1 day');
INSERT INTO posts (id, thread_id, parent_id, kind, author_id, body, html, score, deleted) VALUES
    (1, 1, NULL, 'question', 1, 'Which kettle whistles loudest?', '<p>…</p>', 2, false),
    (2, 1, 1, 'response', 2, 'The copper kettles whistle best', '<p>…</p>', 1, false),
    (3, 1, 1, 'response', 2, 'A vanished answer about kettles', '<p>…</p>', 0, true),
    (4, 1, 2, 'comment', 3, 'Agreed, copper', '<p>…</p>', 0, false),
    (5, 2, NULL, 'question', 2, 'Nothing to do with tea', '<p>…</p>', 0, false);
SELECT setval('users_id_seq', 3), setval('categories_id_seq', 2), setval('threads_id_seq', 2),
       setval('posts_id_seq', 5);
INSERT INTO post_revisions (post_id, revision, body, html, editor_id)
    SELECT id, 1, body, html, author_id FROM posts;
INSERT INTO votes (post_id, user_id, value) VALUES (1, 2, 1), (1, 3, 1), (2, 1, 1);
INSERT INTO thread_events (thread_id, seq, name, data)
    SELECT 1, s, 'post.created', '{}'::jsonb FROM generate_series(1, 6) s UNION ALL SELECT 2, 1, 'post.created', '{}';
"""


@pytest.fixture()
def old_db(pg_admin_url):
    """A database migrated to the version before the Q&A migration, with a forum in it."""
    name = f"parley_upgrade_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(pg_admin_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    async def setup() -> None:
        admin = await asyncpg.connect(pg_admin_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn, target=QA - 1)
            await conn.execute(FILL)
        finally:
            await conn.close()
    asyncio.run(setup())
    yield url

    async def drop() -> None:
        admin = await asyncpg.connect(pg_admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    asyncio.run(drop())


async def _migrate(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [m.version for m in await migrations.migrate(conn)]
    finally:
        await conn.close()


def test_old_data_works_after_the_upgrade(old_db, spawn):
    """After migrating, a server on the old data shows question scores, no accepted answer, finds old posts
    (not the deleted one), counts profiles, sorts by top, and keeps scores and search current on new writes."""
    assert QA in asyncio.run(_migrate(old_db))
    server = spawn(DATABASE_URL=old_db)
    url = server.url
    page = httpx.get(f"{url}/api/threads/1").json()
    assert page["thread"]["score"] == 2 and page["thread"]["accepted_id"] is None and page["thread"]["seq"] == 6
    top = httpx.get(f"{url}/api/threads", params={"sort": "top"}).json()["threads"]
    assert [(t["id"], t["score"]) for t in top] == [(1, 2), (2, 0)]
    assert [t["id"] for t in httpx.get(f"{url}/api/threads", params={"filter": "unanswered"}).json()["threads"]] == [2]
    found = httpx.get(f"{url}/api/search", params={"q": "kettle"}).json()["results"]
    assert [r["post"]["id"] for r in found] == [2, 1] or [r["post"]["id"] for r in found] == [1, 2]
    assert 3 not in [r["post"]["id"] for r in found]
    title = httpx.get(f"{url}/api/search", params={"q": "teapot"}).json()["results"]
    assert [r["post"]["id"] for r in title] == [1] and "<mark>" not in title[0]["snippet"]
    assert [r["post"]["id"] for r in httpx.get(f"{url}/api/search", params={"q": "copper"}).json()["results"]] \
        in ([2, 4], [4, 2])
    profile = httpx.get(f"{url}/api/users/oldb").json()["user"]
    assert profile["stats"] == {"questions": 1, "responses": 1, "comments": 0, "accepted": 0, "score": 1}
    assert profile["last_seen_at"] is not None  # their latest post, as nobody has a session
    assert [p["id"] for p in httpx.get(f"{url}/api/users/oldb/posts").json()["posts"]] == [5, 2]
    # New writes on old rows: a vote moves the thread's score, an edit re-indexes, accepting works.
    asker = Api(url).sign_up()
    assert asker.put("/api/posts/5/vote", json={"value": 1}).status_code == 200
    assert httpx.get(f"{url}/api/threads/2").json()["thread"]["score"] == 1
    answer = asker.post("/api/threads/2/posts", json={"body": "Samovars are not kettles"}).json()["post"]
    assert answer["id"] in [r["post"]["id"] for r in httpx.get(f"{url}/api/search",
                                                               params={"q": "samovar"}).json()["results"]]


async def _catalog(url: str) -> dict[str, list[tuple]]:
    conn = await asyncpg.connect(url)
    try:
        return {
            "columns": sorted(tuple(r) for r in await conn.fetch(
                "SELECT table_name, column_name, data_type, is_nullable, column_default"
                " FROM information_schema.columns WHERE table_schema = 'public'")),
            "indexes": sorted(tuple(r) for r in await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")),
            "triggers": sorted(tuple(r) for r in await conn.fetch(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal")),
            "functions": sorted(tuple(r) for r in await conn.fetch(
                "SELECT proname, prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                " WHERE n.nspname = 'public'")),
        }
    finally:
        await conn.close()


def test_migrated_schema_equals_schema_sql(old_db, fresh_db):
    """The migrated database has exactly the columns, indexes, triggers and functions schema.sql describes."""
    from pathlib import Path
    asyncio.run(_migrate(old_db))
    schema = (Path(__file__).resolve().parents[2] / "schema.sql").read_text()
    name = f"parley_schema_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(fresh_db)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))

    async def build() -> None:
        admin = await asyncpg.connect(fresh_db)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        conn = await asyncpg.connect(url)
        await conn.execute(schema)
        await conn.close()

    async def drop() -> None:
        admin = await asyncpg.connect(fresh_db)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    asyncio.run(build())
    try:
        assert asyncio.run(_catalog(old_db)) == asyncio.run(_catalog(url))
    finally:
        asyncio.run(drop())
