"""Upgrade to the integrations migration (leaving, webhooks, single sign-on) on a database holding data: users
keep their rows and names (none is deleted), and the new tables take rows at once with their keys enforced."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from server import migrations

MINE = next(m.version for m in migrations.available() if m.name == "integrations")


async def _run(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, target=MINE - 1)
        uid = await conn.fetchval("INSERT INTO users (username, display_name, password_hash) VALUES"
                                  " ('ada', 'Ada', 'x') RETURNING id")
        cat = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('old', 'Old') RETURNING id")
        tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title, seq) VALUES ($1, $2, 'Old', 1)"
                                  " RETURNING id", cat, uid)
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        row = await conn.fetchrow("SELECT username, deleted_at FROM users WHERE id = $1", uid)
        assert row["username"] == "ada" and row["deleted_at"] is None
        hook = await conn.fetchval("INSERT INTO webhooks (url, events, secret, created_by) VALUES"
                                   " ('https://example.org/h', '{post.created}', 's', $1) RETURNING id", uid)
        await conn.execute("INSERT INTO webhook_deliveries (webhook_id, thread_id, seq, name) VALUES ($1, $2, 1,"
                           " 'thread.created')", hook, tid)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO webhook_deliveries (webhook_id, thread_id, seq, name) VALUES ($1, $2, 1,"
                               " 'thread.created')", hook, tid)
        await conn.execute("INSERT INTO oidc_identities (issuer, subject, user_id) VALUES ('https://id', 's1', $1)",
                           uid)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO oidc_identities (issuer, subject, user_id) VALUES ('https://id', 's1', $1)",
                               uid)
        await conn.execute("DELETE FROM webhooks WHERE id = $1", hook)
        assert await conn.fetchval("SELECT count(*) FROM webhook_deliveries") == 0  # the log goes with its webhook
    finally:
        await conn.close()


def test_upgrade_adds_leaving_webhooks_and_sso(empty_db: str) -> None:
    """After the upgrade the old user is intact and not deleted; webhooks, deliveries and identities take rows."""
    asyncio.run(_run(empty_db))
