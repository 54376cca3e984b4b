"""DELETE /api/me (CONTRACT "Leaving"): the account goes, its name is free, its posts stay under deleted-user-N,
their text too unless erase_posts; nothing that named the person is left in any table."""

from __future__ import annotations

from typing import Any

import asyncpg

from api_support import check_error
from support.api import Api, new_thread, unique

PASSWORD = "correct horse battery"


def _delete(api: Api, **body: Any) -> Any:
    return api.request("DELETE", "/api/me", json={"password": PASSWORD, **body})


def test_deleting_ends_sessions_frees_the_name_and_keeps_posts(server, forum):
    """204; the session and API keys stop working; the profile is 404; the name can be taken again; the posts stay
    in their threads, text and all, under deleted-user-N."""
    name = unique("leaver")
    alice, bob = Api(server.url).sign_up(name), Api(server.url).sign_up()
    t = new_thread(alice, forum["category"], title="A question that stays", body="the question's words")
    tid = t["thread"]["id"]
    answer = bob.post(f"/api/threads/{tid}/posts", json={"body": "bob answers"}).json()["post"]
    mine = alice.post(f"/api/threads/{tid}/posts", json={"body": "alice's own answer",
                                                         "parent_id": answer["id"]}).json()["post"]
    token = alice.post("/api/me/api-keys", json={"name": "k", "scopes": ["read"]}).json()["token"]
    assert _delete(alice).status_code == 204
    check_error(alice.get("/api/me"), 401)
    check_error(Api(server.url).get("/api/me", headers={"Authorization": f"Bearer {token}"}), 401, "bad_api_key")
    check_error(bob.get(f"/api/users/{name}"), 404)
    gone = f"deleted-user-{alice.user['id']}"
    check_error(bob.get(f"/api/users/{gone}"), 404)
    check_error(Api(server.url).post("/api/session", json={"username": name, "password": PASSWORD}), 401)
    thread = bob.get(f"/api/threads/{tid}").json()
    assert thread["thread"]["author"]["username"] == gone and thread["question"]["body"] == "the question's words"
    comment = thread["responses"][0]["comments"][0]
    assert comment["id"] == mine["id"] and comment["author"]["username"] == gone
    assert comment["author"]["display_name"] == gone and comment["body"] == "alice's own answer"
    events = bob.get(f"/api/threads/{tid}/events?since=0").json()["events"]
    assert name not in str(events) and gone in str(events)  # the backlog names nobody either
    again = Api(server.url).sign_up(name)  # the name is free
    assert again.user["id"] != alice.user["id"]


def test_erase_posts_empties_their_text_and_keeps_the_threads(server, forum):
    """With erase_posts every post of theirs is deleted as a deletion does (empty text, deleted: true), but their
    question's thread and others' posts stay; a post.deleted event is stored for each."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    t = new_thread(alice, forum["category"], title="Erased but kept", body="secret question words")
    tid, qid = t["thread"]["id"], t["question"]["id"]
    answer = bob.post(f"/api/threads/{tid}/posts", json={"body": "bob's answer stays"}).json()["post"]
    other = new_thread(bob, forum["category"], title="Bob's thread")
    reply = alice.post(f"/api/threads/{other['thread']['id']}/posts", json={"body": "secret reply"}).json()["post"]
    assert _delete(alice, erase_posts=True).status_code == 204
    thread = bob.get(f"/api/threads/{tid}")
    assert thread.status_code == 200
    page = thread.json()
    assert page["thread"]["title"] == "Erased but kept"
    assert page["question"]["deleted"] and page["question"]["body"] == "" and page["question"]["html"] == ""
    assert [(r["id"], r["body"]) for r in page["responses"]] == [(answer["id"], "bob's answer stays")]
    theirs = bob.get(f"/api/threads/{other['thread']['id']}").json()
    assert theirs["thread"]["response_count"] == 0 and theirs["responses"][0]["id"] == reply["id"]
    assert theirs["responses"][0]["deleted"]
    events = bob.get(f"/api/threads/{tid}/events?since=0").json()["events"]
    assert "secret question words" not in str(events)
    assert [e["data"] for e in events if e["name"] == "post.deleted"] == [{"id": qid}]


def test_wrong_password_deletes_nothing(server):
    """A wrong password is 403 wrong_password (field password) and the account stays; a guest is 401; no password
    at all is 422."""
    alice = Api(server.url).sign_up()
    check_error(alice.request("DELETE", "/api/me", json={"password": "not the one at all"}), 403, "wrong_password",
                "password")
    check_error(alice.request("DELETE", "/api/me", json={}), 422)
    check_error(Api(server.url).request("DELETE", "/api/me", json={"password": PASSWORD}), 401)
    assert alice.get("/api/me").status_code == 200


def test_a_key_cannot_delete_its_account(server):
    """An API key, even a write key, cannot delete the account: 403 session_required."""
    alice = Api(server.url).sign_up()
    token = alice.post("/api/me/api-keys", json={"name": "w", "scopes": ["read", "write"]}).json()["token"]
    r = Api(server.url).request("DELETE", "/api/me", json={"password": PASSWORD},
                                headers={"Authorization": f"Bearer {token}"})
    check_error(r, 403, "session_required")


def test_nobody_signs_up_as_a_deleted_user(server):
    """The names deleted accounts take are refused at sign-up (409 username_taken), any case."""
    r = Api(server.url).post("/api/users", json={"username": "Deleted-User-999999", "password": PASSWORD})
    check_error(r, 409, "username_taken", "username")


async def test_no_table_keeps_the_name_or_address(server, forum, pg_url):
    """After the deletion no text or JSON column of any table holds the old username, display name or address."""
    name, display, address = unique("scan"), unique("Shown"), f"{unique('a')}@example.org"
    alice = Api(server.url).sign_up(name, display_name=display)
    assert alice.put("/api/me/email", json={"email": address, "password": PASSWORD}).status_code == 200
    t = new_thread(alice, forum["category"], body="words")
    assert alice.patch(f"/api/posts/{t['question']['id']}", json={"body": "edited words"}).status_code == 200
    bob = Api(server.url).sign_up()
    bob.post(f"/api/threads/{t['thread']['id']}/posts", json={"body": "a reply that notifies"})
    assert _delete(alice).status_code == 204
    conn = await asyncpg.connect(pg_url)
    try:
        columns = await conn.fetch(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'json', 'character varying')""")
        found = []
        for c in columns:
            hits = await conn.fetchval(
                f'SELECT count(*) FROM "{c["table_name"]}" WHERE strpos(lower("{c["column_name"]}"::text), $1) > 0'
                f' OR strpos(lower("{c["column_name"]}"::text), $2) > 0 OR strpos(lower("{c["column_name"]}"::text),'
                f' $3) > 0', name.lower(), display.lower(), address.lower())
            if hits:
                found.append((c["table_name"], c["column_name"], hits))
    finally:
        await conn.close()
    assert found == []
