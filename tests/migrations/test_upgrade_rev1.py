"""Upgrading a forum made by revision 1: its own code fills a database, the new `parley migrate`
upgrades it, and through the HTTP API every thread, post, vote, revision and event is still there,
the old password signs in and the old session cookie still works."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from server import migrations
from support.api import Api, unique
from support.databases import create_empty_database, drop_database, make_moderator
from support.processes import PARLEY, ROOT, ServerProcess

# The last commit of revision 1: its schema.sql is exactly migration 0001 and it has no version table.
REV1 = "bc2c2bb"
SECRET = "test-secret-0123456789abcdef"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def rev1_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The revision-1 release's files, from git history."""
    r = subprocess.run(["git", "archive", REV1], cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 0, f"revision 1 ({REV1}) is not in this clone's history: {r.stderr.decode()}"
    dest = tmp_path_factory.mktemp("rev1")
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


@pytest.fixture()
def old_db(pg_admin_url: str) -> Iterator[str]:
    url = create_empty_database(pg_admin_url)
    yield url
    drop_database(pg_admin_url, url)


def serve(tree: Path, db_url: str, redis_url: str, data: Path) -> ServerProcess:
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "PARLEY_RATE_LIMITS": "off", "PARLEY_SECRET": SECRET,
           "PARLEY_DATA_DIR": str(data), "PARLEY_DB_POOL_SIZE": "4"}
    return ServerProcess(env, cwd=tree).start()


def fill(url: str, pg_url: str) -> dict[str, Any]:
    """Users, a moderator, a category, a thread with responses, a comment, votes, an edit and a deletion."""
    ada = Api(url).sign_up(unique("ada"), PASSWORD, "Ada")
    bo = Api(url).sign_up(unique("bo"), PASSWORD)
    mod = Api(url).sign_up(unique("mod"), PASSWORD)
    make_moderator(pg_url, mod.user["username"])
    slug = unique("c")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Old category"}).status_code == 201
    r = ada.post("/api/threads", json={"category": slug, "title": "From before the upgrade", "body": "A *question*"})
    assert r.status_code == 201, r.text
    tid = r.json()["thread"]["id"]
    qid = r.json()["question"]["id"]
    r1 = bo.post(f"/api/threads/{tid}/posts", json={"body": "First answer"}).json()["post"]
    r2 = mod.post(f"/api/threads/{tid}/posts", json={"body": "Second answer"}).json()["post"]
    c1 = ada.post(f"/api/threads/{tid}/posts", json={"body": "A comment", "parent_id": r1["id"]}).json()["post"]
    gone = bo.post(f"/api/threads/{tid}/posts", json={"body": "To be deleted"}).json()["post"]
    assert bo.delete(f"/api/posts/{gone['id']}").status_code == 204
    assert bo.patch(f"/api/posts/{r1['id']}", json={"body": "First answer, edited", "revision": 1}).status_code == 200
    for voter, post, value in ((ada, r1, 1), (mod, r1, 1), (ada, r2, -1), (bo, {"id": qid}, 1)):
        assert voter.put(f"/api/posts/{post['id']}/vote", json={"value": value}).status_code == 200
    return {"ada": ada, "bo": bo, "mod": mod, "slug": slug, "thread": tid, "posts": [qid, r1["id"], r2["id"],
            c1["id"], gone["id"]], "edited": r1["id"]}


def snapshot(url: str, f: dict[str, Any], ada_cookie: str) -> dict[str, Any]:
    """What the API answers about the filled forum (keys of revision 1 only, so later fields may be added)."""
    guest = httpx.Client(base_url=url, timeout=30)
    ada = httpx.Client(base_url=url, cookies={"parley_session": ada_cookie}, timeout=30)
    tid = f["thread"]
    page = guest.get(f"/api/threads/{tid}").json()
    post_keys = ("id", "parent_id", "kind", "author", "body", "html", "created_at", "edited_at", "edited_by",
                 "revision", "score", "deleted")

    def brief(u: dict[str, Any] | None) -> dict[str, Any] | None:  # a User brief as revision 1 had it
        return None if u is None else {k: u[k] for k in ("id", "username", "display_name")}

    def post(p: dict[str, Any]) -> dict[str, Any]:
        return {k: brief(p[k]) if k in ("author", "edited_by") else p[k] for k in post_keys}

    def revision(r: dict[str, Any]) -> dict[str, Any]:
        return {**r, "edited_by": brief(r["edited_by"])}
    thread_keys = ("id", "title", "created_at", "response_count", "last_activity_at", "locked", "seq")
    return {
        "thread": {**{k: page["thread"][k] for k in thread_keys}, "author": brief(page["thread"]["author"])},
        "question": post(page["question"]),
        "responses": [(post(r), [post(c) for c in r["comments"]]) for r in page["responses"]],
        "list": [t["id"] for t in guest.get(f"/api/categories/{f['slug']}/threads").json()["threads"]],
        "revisions": [revision(r) for r in guest.get(f"/api/posts/{f['edited']}/revisions").json()["revisions"]],
        "events": [(e["seq"], e["name"]) for e in guest.get(f"/api/threads/{tid}/events?since=0").json()["events"]],
        "my_votes": sorted((r["id"], r["my_vote"]) for r in ada.get(f"/api/threads/{tid}").json()["responses"]),
    }


def test_revision_1_forum_upgrades_with_all_its_data(rev1_tree, old_db, redis_url, tmp_path):
    """A database made and filled by revision 1, upgraded by `parley migrate`, answers the same and keeps sessions."""
    old = serve(rev1_tree, old_db, redis_url, tmp_path / "old")
    try:
        f = fill(old.url, old_db)
        cookies = {name: f[name].session_cookie for name in ("ada", "bo", "mod")}
        before = snapshot(old.url, f, cookies["ada"])
    finally:
        old.stop()
    async def tables() -> set[str]:
        conn = await asyncpg.connect(old_db)
        try:
            return {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        finally:
            await conn.close()
    assert "threads" in asyncio.run(tables()) and "schema_migrations" not in asyncio.run(tables())

    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update({"DATABASE_URL": old_db, "PARLEY_SECRET": SECRET})
    r = subprocess.run([*PARLEY, "migrate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"version {migrations.head()}" in r.stdout

    new = serve(ROOT, old_db, redis_url, tmp_path / "new")
    try:
        assert snapshot(new.url, f, cookies["ada"]) == before
        for name, cookie in cookies.items():  # the old session cookies are still signed in
            me = httpx.get(new.url + "/api/me", cookies={"parley_session": cookie}, timeout=30)
            assert me.status_code == 200 and me.json()["user"]["id"] == f[name].user["id"], me.text
        signin = httpx.post(new.url + "/api/session", json={"username": f["ada"].user["username"],
                                                            "password": PASSWORD}, timeout=30)
        assert signin.status_code == 200, signin.text
        # The forum goes on: the next event of the old thread takes the next seq.
        ada = httpx.Client(base_url=new.url, cookies={"parley_session": cookies["ada"]}, timeout=30)
        r = ada.post(f"/api/threads/{f['thread']}/posts", json={"body": "After the upgrade"})
        assert r.status_code == 201, r.text
        events = ada.get(f"/api/threads/{f['thread']}/events?since={before['thread']['seq']}").json()["events"]
        assert [e["seq"] for e in events] == [before["thread"]["seq"] + 1]
    finally:
        new.stop()
