"""Moderation over HTTP: flags and the review queue, the public log, suspensions (contract revision 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api_support import check_error, posted
from support import http
from support.api import Api, new_thread, unique
from support.databases import db_fetchval

PASSWORD = "correct horse battery"


@pytest.fixture()
def scene(forum):
    """A thread by `author` with a response by `author`; `member` and `guest` look on."""
    author = Api(forum["url"]).sign_up(password=PASSWORD)
    thread = new_thread(author, forum["category"], "Moderated thread", "The question's own text")
    tid = thread["thread"]["id"]
    resp = posted(author, tid, "A response that someone will report")
    return {"author": author, "member": Api(forum["url"]).sign_up(), "mod": forum["mod"],
            "guest": http.Client(base_url=forum["url"], timeout=30), "thread": tid,
            "question": thread["question"]["id"], "response": resp["id"]}


def modlog(client: httpx.Client, limit: int = 100) -> list[dict]:
    r = client.get(f"/api/modlog?limit={limit}")
    assert r.status_code == 200, r.text
    return r.json()["entries"]


def entries_for(client: httpx.Client, thread_id: int) -> list[dict]:
    return [e for e in modlog(client) if e["target"].get("thread_id") == thread_id]


def test_a_member_flags_a_post_once(scene):
    """A member flags someone else's post (201, a Flag); the same member again gets 409."""
    r = scene["member"].post(f"/api/posts/{scene['response']}/flags", json={"reason": "spam", "note": " buy now "})
    assert r.status_code == 201, r.text
    flag = r.json()["flag"]
    assert flag["post_id"] == scene["response"] and flag["thread_id"] == scene["thread"]
    assert (flag["reason"], flag["note"], flag["status"], flag["resolved_by"]) == ("spam", "buy now", "open", None)
    assert flag["flagger"]["id"] == scene["member"].user["id"]
    again = scene["member"].post(f"/api/posts/{scene['response']}/flags", json={"reason": "rude"})
    check_error(again, 409, "already_flagged")


@pytest.mark.parametrize("who, status", [("author", 403), ("mod_own", 403), ("guest", 401)])
def test_who_cannot_flag(forum, scene, who, status):
    """Nobody flags their own post (a moderator neither); a guest must sign in."""
    if who == "mod_own":
        post = posted(scene["mod"], scene["thread"], "The moderator's own response")
        r = scene["mod"].post(f"/api/posts/{post['id']}/flags", json={"reason": "other"})
    else:
        r = scene[who].post(f"/api/posts/{scene['response']}/flags", json={"reason": "other"})
    check_error(r, status)


@pytest.mark.parametrize("body, field", [({"reason": "boring"}, "reason"), ({}, "reason"),
                                         ({"reason": "other", "note": "x" * 501}, "note")])
def test_a_bad_flag_is_refused_with_its_field(scene, body, field):
    """An unknown reason, a missing one or an over-long note is 422 naming the field."""
    r = scene["member"].post(f"/api/posts/{scene['response']}/flags", json=body)
    check_error(r, 422, field=field)


def test_a_deleted_post_cannot_be_flagged(scene):
    """Flagging a post that was deleted is a 409."""
    assert scene["author"].delete(f"/api/posts/{scene['response']}").status_code == 204
    r = scene["member"].post(f"/api/posts/{scene['response']}/flags", json={"reason": "spam"})
    check_error(r, 409, "post_deleted")


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/api/flags", None), ("PUT", "/api/flags/1", {"status": "resolved"}),
    ("PUT", "/api/users/{author}/suspension", {"until": None}),
])
def test_members_cannot_moderate(scene, method, path, body):
    """A member cannot list flags, settle one or suspend anyone (403); a guest gets 401."""
    url = path.format(author=scene["author"].user["username"])
    check_error(scene["member"].request(method, url, json=body), 403)
    check_error(scene["guest"].request(method, url, json=body), 401)


def test_several_flags_are_one_queue_item_settled_together(forum, scene):
    """Two flags on one post: the queue lists both; resolving one resolves both and logs it once."""
    other = Api(forum["url"]).sign_up()
    f1 = scene["member"].post(f"/api/posts/{scene['response']}/flags", json={"reason": "spam"}).json()["flag"]
    f2 = other.post(f"/api/posts/{scene['response']}/flags", json={"reason": "rude"}).json()["flag"]
    queue = scene["mod"].get("/api/flags?status=open&limit=100").json()
    assert {f1["id"], f2["id"]} <= {f["id"] for f in queue["flags"]} and queue["open"] >= 1
    r = scene["mod"].put(f"/api/flags/{f1['id']}", json={"status": "resolved"})
    assert r.status_code == 200 and r.json()["flag"]["status"] == "resolved"
    assert r.json()["flag"]["resolved_by"]["id"] == scene["mod"].user["id"]
    open_ids = {f["id"] for f in scene["mod"].get("/api/flags?limit=100").json()["flags"]}
    assert not {f1["id"], f2["id"]} & open_ids
    resolved = {f["id"]: f for f in scene["mod"].get("/api/flags?status=resolved&limit=100").json()["flags"]}
    assert resolved[f2["id"]]["status"] == "resolved"
    actions = [e["action"] for e in entries_for(scene["guest"], scene["thread"])]
    assert actions.count("flag.resolved") == 1


def test_dismissing_is_logged_and_the_queue_pages_by_cursor(forum, scene):
    """Dismissed flags leave the open queue; the queue pages newest first with `next`."""
    flaggers = [Api(forum["url"]).sign_up() for _ in range(3)]
    ids = [f.post(f"/api/posts/{scene['response']}/flags", json={"reason": "off_topic"}).json()["flag"]["id"]
           for f in flaggers]
    page1 = scene["mod"].get("/api/flags?limit=2").json()
    assert [f["id"] for f in page1["flags"]] == sorted(ids, reverse=True)[:2] and page1["next"]
    page2 = scene["mod"].get(f"/api/flags?limit=2&before={page1['next']}").json()
    assert page2["flags"][0]["id"] == min(ids)
    assert scene["mod"].put(f"/api/flags/{ids[0]}", json={"status": "dismissed"}).status_code == 200
    assert not {f["id"] for f in scene["mod"].get("/api/flags?limit=100").json()["flags"]} & set(ids)
    assert "flag.dismissed" in [e["action"] for e in entries_for(scene["guest"], scene["thread"])]


def test_every_moderator_action_on_others_content_is_logged_publicly(forum, scene):
    """Edit, rename, lock, unlock, move and delete by a moderator are in the log, for guests, newest first."""
    mod, tid, rid = scene["mod"], scene["thread"], scene["response"]
    slug = unique("elsewhere-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Elsewhere"}).status_code == 201
    assert mod.patch(f"/api/posts/{rid}", json={"body": "Edited by a moderator"}).status_code == 200
    assert mod.patch(f"/api/threads/{tid}", json={"title": "Renamed by a moderator"}).status_code == 200
    assert mod.patch(f"/api/threads/{tid}", json={"locked": True}).status_code == 200
    assert mod.patch(f"/api/threads/{tid}", json={"locked": False}).status_code == 200
    assert mod.patch(f"/api/threads/{tid}", json={"category": slug}).status_code == 200
    assert mod.delete(f"/api/posts/{rid}").status_code == 204
    entries = entries_for(scene["guest"], tid)
    assert [e["action"] for e in entries] == ["post.deleted", "thread.moved", "thread.unlocked", "thread.locked",
                                              "thread.renamed", "post.edited"]
    for e in entries:
        assert e["moderator"]["id"] == mod.user["id"]
        assert e["target"]["thread_id"] == tid
    assert entries[0]["target"]["post_id"] == rid and entries[0]["target"]["username"] == \
        scene["author"].user["username"]
    text = scene["guest"].get("/api/modlog?limit=100").text
    assert "Edited by a moderator" not in text and "someone will report" not in text  # names, never copies


def test_own_content_and_members_are_not_logged(scene):
    """A moderator editing their own post, and an author editing theirs, write no log entry."""
    own = posted(scene["mod"], scene["thread"], "The moderator's response")
    assert scene["mod"].patch(f"/api/posts/{own['id']}", json={"body": "The moderator's, edited"}).status_code == 200
    assert scene["author"].patch(f"/api/posts/{scene['response']}", json={"body": "Author edit"}).status_code == 200
    assert entries_for(scene["guest"], scene["thread"]) == []


def test_the_log_pages_by_cursor(scene):
    """`next` of one page, passed as `before`, continues with older entries and no repeats."""
    for i in range(4):  # four entries of its own: the log may hold nothing else (a database of its own)
        r = scene["mod"].patch(f"/api/threads/{scene['thread']}", json={"title": f"Title {i}"})
        assert r.status_code == 200, r.text
    first = scene["guest"].get("/api/modlog?limit=2").json()
    second = scene["guest"].get(f"/api/modlog?limit=2&before={first['next']}").json()
    ids = [e["id"] for e in first["entries"] + second["entries"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    check_error(scene["guest"].get("/api/modlog?before=nonsense"), 404, "bad_cursor")  # shaped like one: names nothing
    check_error(scene["guest"].get("/api/modlog?before=non+sense"), 400, "bad_cursor")


def test_suspension_ends_sessions_blocks_sign_in_and_is_logged(forum, scene):
    """A suspended member's sessions end, sign-in answers 403 `suspended`; lifting it lets them in again."""
    victim = scene["author"]
    name = victim.user["username"]
    until = (datetime.now(UTC) + timedelta(days=3)).isoformat().replace("+00:00", "Z")
    r = scene["mod"].put(f"/api/users/{name}/suspension", json={"until": until, "reason": "spam run"})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["suspended_until"] is not None
    check_error(victim.get("/api/me"), 401)
    signin = http.post(forum["url"] + "/api/session", json={"username": name.upper(), "password": PASSWORD})
    check_error(signin, 403, "suspended")
    assert until[:10] in signin.json()["error"]["message"]
    entry = modlog(scene["guest"])[0]
    assert (entry["action"], entry["target"], entry["reason"]) == ("user.suspended", {"username": name}, "spam run")
    r = scene["mod"].put(f"/api/users/{name}/suspension", json={"until": None})
    assert r.status_code == 200 and r.json()["user"]["suspended_until"] is None
    assert modlog(scene["guest"])[0]["action"] == "user.unsuspended"
    assert http.post(forum["url"] + "/api/session", json={"username": name, "password": PASSWORD}).status_code == 200


def test_a_suspension_ends_by_itself_at_its_time(forum, pg_url, scene):
    """Once `until` has passed the member signs in again without anyone lifting it."""
    name = scene["author"].user["username"]
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert scene["mod"].put(f"/api/users/{name}/suspension", json={"until": until}).status_code == 200
    creds = {"username": name, "password": PASSWORD}
    check_error(http.post(forum["url"] + "/api/session", json=creds), 403, "suspended")
    db_fetchval(pg_url, "UPDATE users SET suspended_until = now() - interval '1 second'"
                " WHERE lower(username) = lower($1) RETURNING 1", name)  # the hour has passed
    assert http.post(forum["url"] + "/api/session", json=creds).status_code == 200


def test_a_suspension_until_a_past_time_lifts_it(forum, scene):
    """`until` that has already passed is the same as null: the member is not suspended (and it is logged so)."""
    name = scene["author"].user["username"]
    r = scene["mod"].put(f"/api/users/{name}/suspension", json={"until": "2001-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["user"]["suspended_until"] is None
    assert modlog(scene["guest"])[0]["action"] == "user.unsuspended"
    assert http.post(forum["url"] + "/api/session", json={"username": name, "password": PASSWORD}).status_code == 200


@pytest.mark.parametrize("body, status, field", [
    ({"until": "2099-01-01T00:00:00"}, 422, "until"),
    ({"until": "soon"}, 422, "until"), ({"until": None, "reason": "x" * 501}, 422, "reason"),
])
def test_a_bad_suspension_is_refused(scene, body, status, field):
    """A time without a zone, garbage or an over-long reason is 422 naming the field."""
    r = scene["mod"].put(f"/api/users/{scene['author'].user['username']}/suspension", json=body)
    check_error(r, status, field=field)


def test_a_moderator_cannot_suspend_themselves_or_nobody(scene):
    """Suspending oneself is 403; an unknown username is 404."""
    until = "2099-01-01T00:00:00Z"
    check_error(scene["mod"].put(f"/api/users/{scene['mod'].user['username']}/suspension", json={"until": until}),
                403)
    check_error(scene["mod"].put(f"/api/users/{unique('nobody')}/suspension", json={"until": until}), 404)
