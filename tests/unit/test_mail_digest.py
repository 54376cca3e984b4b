"""Digests (server/outbox/notify.py): one mail per period with the period's most active threads, to a member
with a verified address and the digest on who has not visited for the period; none when nothing is new,
none to someone online or who visited lately, and not twice in one period. Real PostgreSQL, no server."""

from __future__ import annotations

import email
import email.policy
import uuid
from typing import Any

import asyncpg
import pytest

from server import config
from server.outbox.compose import Composer
from server.outbox.notify import Notifier
from server.store import categories, posts, threads, users


@pytest.fixture()
async def pool(fresh_db: str) -> Any:
    p = await asyncpg.create_pool(fresh_db, min_size=1, max_size=3)
    yield p
    await p.close()


def notifier(pool: asyncpg.Pool, online: set[int] | None = None) -> Notifier:
    settings = config.load({"PARLEY_SECRET": "test-secret-0123456789abcdef"})

    async def who(ids: list[int]) -> set[int]:
        return {i for i in ids if i in (online or set())}
    return Notifier(pool, settings, Composer(settings), who, lambda kinds: None)


async def member(pool: asyncpg.Pool, digest: str = "weekly", away_days: float = 30) -> asyncpg.Record:
    name = "dg" + uuid.uuid4().hex[:8]
    row = await users.create(pool, name, name.title(), "x")
    await pool.execute("UPDATE users SET email = $2, email_verified = true, digest = $3,"
                       " created_at = now() - make_interval(days => $4) WHERE id = $1",
                       row["id"], f"{name}@mail.example.org", digest, int(away_days))
    return await users.by_id(pool, row["id"])


async def digests(pool: asyncpg.Pool) -> dict[str, Any]:
    rows = await pool.fetch("SELECT recipient, message FROM mail_outbox WHERE kind = 'digest'")
    return {r["recipient"]: email.message_from_string(r["message"], policy=email.policy.default) for r in rows}


async def activity(pool: asyncpg.Pool) -> int:
    author = await users.create(pool, "au" + uuid.uuid4().hex[:8], "Author", "x")
    async with pool.acquire() as conn, conn.transaction():
        cat = await categories.create(conn, "c" + uuid.uuid4().hex[:8], "Digest", None)
        made = await threads.create(conn, author["id"], cat["slug"], "Busy <thread>", "A body", "<p>A body</p>")
    tid = made.value["thread"]["id"]
    async with pool.acquire() as conn:
        await posts.create(conn, tid, author["id"], "A reply", None, "<p>A reply</p>")
    return tid  # type: ignore[no-any-return]


async def test_digest_goes_to_the_away_and_not_twice(pool: asyncpg.Pool) -> None:
    """Someone away for the period gets one digest listing the busy thread (escaped in HTML, unsubscribe
    headers); a second round in the same period sends nothing more."""
    away = await member(pool)
    tid = await activity(pool)
    assert await notifier(pool).digest_round() == 1
    mail = (await digests(pool))[away["email"]]
    assert f"/t/{tid}" in mail.get_body(preferencelist=("plain",)).get_content()
    assert "Busy &lt;thread&gt;" in mail.get_body(preferencelist=("html",)).get_content()
    assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert await notifier(pool).digest_round() == 0


async def test_no_digest_when_nothing_is_new(pool: asyncpg.Pool) -> None:
    """With no post in the period, nobody gets a digest."""
    await member(pool)
    assert await notifier(pool).digest_round() == 0
    assert await digests(pool) == {}


async def test_no_digest_for_the_online_the_recent_the_off_and_the_unverified(pool: asyncpg.Pool) -> None:
    """Online now, visited within the period (a session used yesterday), digest off, or no verified address:
    no digest; the daily one goes to whoever is away a day."""
    online = await member(pool)
    recent = await member(pool)
    await pool.execute("INSERT INTO sessions (id, user_id, last_seen_at) VALUES ($1, $2, now() - interval '1 day')",
                       uuid.uuid4().hex, recent["id"])
    off = await member(pool, digest="off")
    unverified = await member(pool)
    await pool.execute("UPDATE users SET email_verified = false WHERE id = $1", unverified["id"])
    daily = await member(pool, digest="daily", away_days=2)
    await activity(pool)
    assert await notifier(pool, online={online["id"]}).digest_round() == 1
    assert set(await digests(pool)) == {daily["email"]}
    assert off and recent
