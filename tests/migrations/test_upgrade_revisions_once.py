"""Upgrade to the revisions_once migration on a database holding data as the release before wrote it: each
post.created / post.edited event then keeps its text only in post_revisions, and the events (HTTP and /ws
replay) and revisions answer exactly what they answered before."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from server import migrations
from server.auth import hash_password
from support.processes import ServerProcess
from support.ws import Watcher

PASSWORD = "correct horse battery"
MINE = next(m.version for m in migrations.available() if m.name == "revisions_once")

# The Post JSON the release before stored in thread_events (store/posts.py then): body and html included.
POST_JSON = """
SELECT jsonb_build_object(
    'id', p.id, 'thread_id', p.thread_id, 'parent_id', p.parent_id, 'kind', p.kind,
    'author', jsonb_build_object('id', a.id, 'username', a.username, 'display_name', a.display_name),
    'body', p.body, 'html', p.html,
    'created_at', to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'edited_at', to_char(p.edited_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'edited_by', CASE WHEN e.id IS NULL THEN NULL
                      ELSE jsonb_build_object('id', e.id, 'username', e.username, 'display_name', e.display_name) END,
    'revision', p.revision, 'score', p.score, 'my_vote', 0, 'deleted', p.deleted)
FROM posts p JOIN users a ON a.id = p.author_id LEFT JOIN users e ON e.id = p.edited_by WHERE p.id = $1
"""


class Old:
    """Writes as the release before did: the post, its revision and an event holding the whole Post."""

    def __init__(self, conn: asyncpg.Connection, thread: int) -> None:
        self.conn, self.thread = conn, thread

    async def event(self, name: str, data: str) -> None:
        seq = await self.conn.fetchval("UPDATE threads SET seq = seq + 1 WHERE id = $1 RETURNING seq", self.thread)
        await self.conn.execute("INSERT INTO thread_events (thread_id, seq, name, data) VALUES ($1, $2, $3, $4::jsonb)",
                                self.thread, seq, name, data)

    async def post(self, kind: str, author: int, body: str, parent: int | None = None) -> int:
        pid = await self.conn.fetchval(
            "INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html) VALUES ($1, $2, $3, $4, $5, $6)"
            " RETURNING id", self.thread, parent, kind, author, body, f"<p>{body}</p>\n")
        await self.conn.execute("INSERT INTO post_revisions (post_id, revision, body, html, editor_id, edited_at)"
                                " SELECT id, 1, body, html, author_id, created_at FROM posts WHERE id = $1", pid)
        await self.event("post.created", await self.conn.fetchval(POST_JSON, pid))
        if kind == "response":
            await self.conn.execute("UPDATE threads SET response_count = response_count + 1 WHERE id = $1",
                                    self.thread)
        return pid

    async def edit(self, pid: int, editor: int, body: str) -> None:
        await self.conn.execute(
            "UPDATE posts SET body = $2, html = $3, revision = revision + 1, edited_at = now(), edited_by = $4"
            " WHERE id = $1", pid, body, f"<p>{body}</p>\n", editor)
        await self.conn.execute("INSERT INTO post_revisions (post_id, revision, body, html, editor_id, edited_at)"
                                " SELECT id, revision, body, html, edited_by, edited_at FROM posts WHERE id = $1", pid)
        await self.event("post.edited", await self.conn.fetchval(POST_JSON, pid))

    async def delete(self, pid: int) -> None:
        await self.conn.execute("UPDATE posts SET deleted = true WHERE id = $1", pid)
        await self.conn.execute(
            "UPDATE thread_events SET data = data || '{\"body\": \"\", \"html\": \"\"}'::jsonb WHERE thread_id = $1"
            " AND name IN ('post.created', 'post.edited') AND (data->>'id')::bigint = $2", self.thread, pid)
        await self.conn.execute("UPDATE threads SET response_count = response_count - 1 WHERE id = $1", self.thread)
        await self.event("post.deleted", json.dumps({"id": pid}))


async def _fill_before(url: str) -> dict[str, Any]:
    """At the version before: a question edited once, a response edited three times (once by a moderator),
    a comment, and a response edited and then deleted (its events already emptied)."""
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn, target=MINE - 1)
        assert await migrations.current_version(conn) == MINE - 1
        pw = await hash_password(PASSWORD)
        ids = {}
        for name in ("ada", "bob", "mod"):
            ids[name] = await conn.fetchval("INSERT INTO users (username, display_name, password_hash, is_moderator)"
                                            " VALUES ($1, $2, $3, $4) RETURNING id", name, name.title(), pw,
                                            name == "mod")
        cat = await conn.fetchval("INSERT INTO categories (slug, name) VALUES ('old', 'Old') RETURNING id")
        tid = await conn.fetchval("INSERT INTO threads (category_id, author_id, title) VALUES ($1, $2, 'Old')"
                                  " RETURNING id", cat, ids["ada"])
        old = Old(conn, tid)
        q = await old.post("question", ids["ada"], "what is " + "long " * 3000 + "?")
        await old.edit(q, ids["ada"], "what is it, " + "really " * 3000 + "?")
        r = await old.post("response", ids["bob"], "first answer")
        await old.post("comment", ids["ada"], "a remark", parent=r)
        for i, who in enumerate(("bob", "mod", "bob"), start=2):
            await old.edit(r, ids[who], f"answer, version {i} " + "x" * 200)
        gone = await old.post("response", ids["bob"], "a mistake")
        await old.edit(gone, ids["bob"], "still a mistake")
        await old.delete(gone)
        events = await conn.fetch("SELECT seq, name, data::text AS data FROM thread_events WHERE thread_id = $1"
                                  " ORDER BY seq", tid)
        return {"thread": tid, "posts": {"question": q, "response": r, "deleted": gone},
                "events": [(e["seq"], e["name"], e["data"]) for e in events]}
    finally:
        await conn.close()


async def _upgrade(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        applied = await migrations.migrate(conn)
        assert MINE in [m.version for m in applied]
        return await conn.fetch("SELECT seq, name, data, post_id, revision FROM thread_events ORDER BY seq")
    finally:
        await conn.close()


async def _stored(url: str, thread: int, seq: int) -> asyncpg.Record:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchrow("SELECT data::text AS data, post_id, revision FROM thread_events"
                                   " WHERE thread_id = $1 AND seq = $2", thread, seq)
    finally:
        await conn.close()


def _revisions(url: str, post_id: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/api/posts/{post_id}/revisions")
    assert r.status_code == 200, r.text
    return r.json()["revisions"]  # type: ignore[no-any-return]


def test_upgrade_stores_each_revision_once_and_answers_the_same(empty_db: str, redis_url: str, tmp_path: Path) -> None:
    """After the upgrade the stored events of live posts hold no body or html but name their revision; the
    events endpoint and a /ws replay from 0 give every event with exactly the data (keys and their order
    included) stored before, the deleted post's stay empty, and the revisions answer as before; a new edit
    after the upgrade is stored the same way and answered whole."""
    before = asyncio.run(_fill_before(empty_db))
    env = {"DATABASE_URL": empty_db, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off",
           "PARLEY_DB_POOL_SIZE": "3", "PARLEY_RENDER_WORKERS": "1", "PARLEY_SECRET": "test-secret-0123456789abcdef"}
    proc = ServerProcess({**env, "PARLEY_DATA_DIR": str(tmp_path / "data")})
    stored = asyncio.run(_upgrade(empty_db))
    by_seq = {r["seq"]: r for r in stored}
    tid, posts = before["thread"], before["posts"]
    for seq, name, data in before["events"]:
        old = json.loads(data)
        row = by_seq[seq]
        if name in ("post.created", "post.edited") and old["id"] != posts["deleted"]:
            assert (row["post_id"], row["revision"]) == (old["id"], old["revision"])
            assert "body" not in json.loads(row["data"]) and "html" not in json.loads(row["data"])
        else:
            assert row["post_id"] is None and json.loads(row["data"]) == old
    proc.start()
    try:
        r = httpx.get(f"{proc.url}/api/threads/{tid}/events", params={"since": 0})
        assert r.status_code == 200
        got = r.json()["events"]
        assert [(e["seq"], e["name"]) for e in got] == [(s, n) for s, n, _ in before["events"]]
        for e, (_, _, data) in zip(got, before["events"], strict=True):
            assert e["data"] == json.loads(data) and list(e["data"]) == list(json.loads(data)), e["seq"]
        # The answer's bytes splice the stored text: each event's data is exactly the text stored before.
        for _, _, data in before["events"]:
            assert data.encode() in r.content
        resp = _revisions(proc.url, posts["response"])
        assert [x["body"] for x in resp] == ["first answer"] + [f"answer, version {i} " + "x" * 200 for i in (2, 3, 4)]
        assert [x["edited_by"]["username"] for x in resp] == ["bob", "bob", "mod", "bob"]
        assert all(x["html"] == f"<p>{x['body']}</p>\n" for x in resp)
        assert [x["revision"] for x in _revisions(proc.url, posts["question"])] == [1, 2]
        assert _revisions(proc.url, posts["deleted"]) == []

        async def replay() -> list[dict[str, Any]]:
            w = await Watcher.open(proc.ws_url)
            try:
                ack = await w.subscribe(tid, since=0)
                assert ack["type"] == "subscribed", ack
                return w.events.get(tid, [])
            finally:
                await w.close()
        frames = asyncio.run(replay())
        assert [(f["seq"], f["data"]) for f in frames] == [(s, json.loads(d)) for s, _, d in before["events"]]

        # A new edit after the upgrade: stored without its text, answered whole.
        c = httpx.Client(base_url=proc.url, timeout=30)
        assert c.post("/api/session", json={"username": "bob", "password": PASSWORD}).status_code == 200
        edited = c.patch(f"/api/posts/{posts['response']}", json={"body": "answer, version 5"})
        assert edited.status_code == 200, edited.text
        last = httpx.get(f"{proc.url}/api/threads/{tid}/events", params={"since": len(before["events"])}).json()
        (ev,) = last["events"]
        assert ev["name"] == "post.edited" and ev["data"]["body"] == "answer, version 5"
        assert {k: v for k, v in ev["data"].items() if k != "my_vote"} == {
            k: v for k, v in edited.json()["post"].items() if k != "my_vote"}
        assert len(_revisions(proc.url, posts["response"])) == 5
        row = asyncio.run(_stored(empty_db, tid, ev["seq"]))
        assert (row["post_id"], row["revision"]) == (posts["response"], 5) and "body" not in json.loads(row["data"])
    finally:
        proc.stop()
