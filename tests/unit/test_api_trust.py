"""Trust over HTTP (CONTRACT rev. 3 "Trust and spam"): the reputation ledger endpoint, the privilege table of
each preset, and every privilege's 403 `privilege` under `standard` and none under `open`."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from api_support import check_error, posted
from server import shapes
from support import http
from support.api import Api, new_thread, unique
from support.databases import db_fetch


def set_reputation(pg_url: str, api: Api, value: int) -> None:
    """Give a test user a reputation directly (the ledger is not the subject here)."""
    db_fetch(pg_url, "UPDATE users SET reputation = $2 WHERE id = $1", api.user["id"], value)  # type: ignore[index]


def test_privilege_table_of_each_preset(server, standard):
    """GET /api/privileges: every privilege at 1 under open except edit_others (moderators only: null); the
    contract's thresholds under standard."""
    got = http.get(f"{server.url}/api/privileges").json()
    msgspec.convert(got, shapes.Privileges)
    assert {p["name"]: p["reputation"] for p in got["privileges"]} == {
        "vote_up": 1, "flag": 1, "comment_anywhere": 1, "vote_down": 1, "create_tag": 1, "edit_others": None}
    got = Api(standard.url).get("/api/privileges").json()
    assert {p["name"]: p["reputation"] for p in got["privileges"]} == {
        "vote_up": 15, "flag": 15, "comment_anywhere": 50, "vote_down": 125, "create_tag": 150, "edit_others": 2000}


def _attempts(base: str, forum: dict[str, Any]) -> tuple[Api, dict[str, Any]]:
    """A new member and the things they will try to do to others' posts."""
    asker, helper, me = Api(base).sign_up(), Api(base).sign_up(), Api(base).sign_up()
    made = new_thread(asker, forum["category"])
    tid = made["thread"]["id"]
    answer = posted(helper, tid, "An answer")
    return me, {"tid": tid, "question": made["question"]["id"], "answer": answer["id"]}


def _try(me: Api, name: str, t: dict[str, Any], category: str) -> Any:
    if name == "vote_up":
        return me.put(f"/api/posts/{t['question']}/vote", json={"value": 1})
    if name == "vote_down":
        return me.put(f"/api/posts/{t['answer']}/vote", json={"value": -1})
    if name == "flag":
        return me.post(f"/api/posts/{t['answer']}/flags", json={"reason": "other"})
    if name == "comment_anywhere":
        return me.post(f"/api/threads/{t['tid']}/posts", json={"body": "A comment", "parent_id": t["answer"]})
    if name == "create_tag":
        return me.post("/api/threads", json={"category": category, "title": "Tagged", "body": "Body",
                                             "tags": [unique("t").lower()]})
    assert name == "edit_others"
    return me.patch(f"/api/posts/{t['answer']}", json={"body": "Edited by someone else"})


THRESHOLDS = {"vote_up": 15, "flag": 15, "comment_anywhere": 50, "vote_down": 125, "create_tag": 150,
              "edit_others": 2000}


@pytest.mark.parametrize("name", list(THRESHOLDS))
def test_every_privilege_is_403_below_its_threshold_under_standard(standard, std_forum, pg_url, name):
    """Under standard, one reputation short of a privilege's threshold → 403 code privilege; at it, allowed."""
    me, t = _attempts(standard.url, std_forum)
    set_reputation(pg_url, me, THRESHOLDS[name] - 1)
    err = check_error(_try(me, name, t, std_forum["category"]), 403, "privilege")
    if name not in ("create_tag", "edit_others"):  # those two are refused inside the write, which names the privilege
        assert str(THRESHOLDS[name]) in err["message"]
    set_reputation(pg_url, me, THRESHOLDS[name])
    r = _try(me, name, t, std_forum["category"])
    assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize("name", [n for n in THRESHOLDS if n != "edit_others"])
def test_no_privilege_is_refused_to_a_new_member_under_open(server, forum, name):
    """Under open (the default) a brand-new member (reputation 1) may do everything but edit others' posts."""
    me, t = _attempts(server.url, forum)
    r = _try(me, name, t, forum["category"])
    assert r.status_code in (200, 201), r.text


def test_edit_others_is_for_moderators_only_under_open(server, forum, pg_url):
    """Under open even 5000 reputation does not let a member edit someone else's post (403 privilege)."""
    me, t = _attempts(server.url, forum)
    set_reputation(pg_url, me, 5000)
    check_error(_try(me, "edit_others", t, forum["category"]), 403, "privilege")
    assert _try(forum["mod"], "edit_others", t, forum["category"]).status_code == 200


def test_own_posts_take_comments_whatever_the_reputation(standard, std_forum):
    """Under standard a new member may comment on their own response and under answers to their own question."""
    asker, helper = Api(standard.url).sign_up(), Api(standard.url).sign_up()
    tid = new_thread(asker, std_forum["category"])["thread"]["id"]
    answer = posted(helper, tid)
    assert posted(asker, tid, "Thanks, but", parent_id=answer["id"])  # under an answer to my question
    assert posted(helper, tid, "Also", parent_id=answer["id"])  # under my own response
    check_error(_try(Api(standard.url).sign_up(), "comment_anywhere", {"tid": tid, "answer": answer["id"]},
                     std_forum["category"]), 403, "privilege")


def test_moderators_hold_every_privilege_under_standard(standard, std_forum):
    """A moderator at 1 reputation does all of it."""
    for name in THRESHOLDS:
        _, t = _attempts(standard.url, std_forum)
        r = _try(std_forum["mod"], name, t, std_forum["category"])
        assert r.status_code in (200, 201), (name, r.text)


def test_reputation_ledger_pages_newest_first(server, forum):
    """GET /api/users/{username}/reputation lists each change with its reason and post, newest first, paged."""
    asker, helper, voter = Api(server.url).sign_up(), Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    answer = posted(helper, tid)
    assert voter.put(f"/api/posts/{answer['id']}/vote", json={"value": 1}).status_code == 200
    assert asker.put(f"/api/threads/{tid}/accepted", json={"post_id": answer["id"]}).status_code == 200
    assert voter.put(f"/api/posts/{answer['id']}/vote", json={"value": 0}).status_code == 200
    name = helper.user["username"]  # type: ignore[index]
    r = http.get(f"{server.url}/api/users/{name.upper()}/reputation", params={"limit": 2})
    assert r.status_code == 200, r.text
    page = msgspec.convert(r.json(), shapes.ReputationLedger)
    assert [(e.delta, e.reason, e.post_id) for e in page.events] == [(-10, "vote_undone", answer["id"]),
                                                                     (15, "accepted", answer["id"])]
    assert page.next is not None
    rest = http.get(f"{server.url}/api/users/{name}/reputation", params={"limit": 2, "before": page.next}).json()
    assert [(e["delta"], e["reason"]) for e in rest["events"]] == [(10, "vote_up")] and rest["next"] is None
    assert http.get(f"{server.url}/api/users/{name}").json()["user"]["reputation"] == 16
    check_error(http.get(f"{server.url}/api/users/nobody-here-at-all/reputation"), 404)
    check_error(http.get(f"{server.url}/api/users/{name}/reputation", params={"before": "!!"}), 400)


def test_the_openapi_document_describes_each_guarded_403(server):
    """Each operation the guard protects describes its 403 `privilege` (from the same table as the handlers)."""
    doc = http.get(f"{server.url}/api/openapi.json").json()
    ops = {op["operationId"]: op for path in doc["paths"].values() for op in path.values() if "operationId" in op}
    for op_id in ("vote", "flagPost", "createPost", "createThread", "updateThread", "editPost"):
        assert "privilege" in ops[op_id]["responses"]["403"]["description"], op_id
    assert "privilege" not in ops["getThread"]["responses"].get("403", {}).get("description", "")
