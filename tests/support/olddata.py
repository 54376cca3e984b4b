"""What the upgrade tests (tests/migrations/test_upgrade_*.py) put in a database at the version before their
migration: users, a category, a question and its answer, written with the columns every version since 0001 has,
so each test adds only what its own migration is about."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from server import migrations


@asynccontextmanager
async def at_version(url: str, version: int) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the empty database `url` migrated to `version` (and checked to be there)."""
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, target=version)
        assert await migrations.current_version(conn) == version
        yield conn
    finally:
        await conn.close()


async def add_users(conn: asyncpg.Connection, *names: str, password_hash: str = "x") -> dict[str, int]:
    """Users named `names` (display name the name in title case): their ids by name."""
    return {name: await conn.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES ($1, $2, $3)"
                                      " RETURNING id", name, name.title(), password_hash)
            for name in names}


async def add_category(conn: asyncpg.Connection, slug: str = "old", name: str = "Old") -> int:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "INSERT INTO categories (slug, name) VALUES ($1, $2) RETURNING id", slug, name)


async def add_thread(conn: asyncpg.Connection, category: int, author: int, title: str = "Old question", seq: int = 1,
                     response_count: int = 0) -> int:
    return await conn.fetchval(  # type: ignore[no-any-return]
        "INSERT INTO threads (category_id, author_id, title, seq, response_count) VALUES ($1, $2, $3, $4, $5)"
        " RETURNING id", category, author, title, seq, response_count)


async def add_post(conn: asyncpg.Connection, thread: int, kind: str, author: int, body: str, seq: int,
                   parent: int | None = None, html: str | None = None) -> int:
    """A post; its HTML `<p>body</p>` unless given."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        "INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html, seq) VALUES ($1, $2, $3, $4, $5, $6,"
        " $7) RETURNING id", thread, parent, kind, author, body, html if html is not None else f"<p>{body}</p>", seq)


async def asked_and_answered(conn: asyncpg.Connection, asker: int, answerer: int, title: str = "Old question",
                             question: str = "q?", question_html: str | None = None) -> tuple[int, int, int]:
    """In a new category 'old': `asker`'s thread (seq 2, one response) with its question and `answerer`'s
    response; (thread, question, response) ids."""
    thread = await add_thread(conn, await add_category(conn), asker, title, seq=2, response_count=1)
    q = await add_post(conn, thread, "question", asker, question, 1, html=question_html)
    r = await add_post(conn, thread, "response", answerer, "an answer", 2, parent=q)
    return thread, q, r
