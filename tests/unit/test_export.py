"""GET /api/me/export (CONTRACT "Leaving"): everything the user wrote and set, theirs only, as a download."""

from __future__ import annotations

from api_support import check_error
from support import http
from support.api import Api, new_thread


def test_export_holds_what_the_user_wrote_and_set(server, forum):
    """Profile, posts with revisions, votes, follows, read positions, notifications, flags, bookmarks, preferences,
    keys."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    t = new_thread(alice, forum["category"], title="Exported question", body="first words")
    tid, qid = t["thread"]["id"], t["question"]["id"]
    assert alice.patch(f"/api/posts/{qid}", json={"body": "second words"}).status_code == 200
    answer = bob.post(f"/api/threads/{tid}/posts", json={"body": "bob's answer"}).json()["post"]
    assert alice.put(f"/api/posts/{answer['id']}/vote", json={"value": 1}).status_code == 200
    assert alice.post(f"/api/posts/{answer['id']}/flags", json={"reason": "other", "note": "my note"}
                      ).status_code == 201
    assert alice.put("/api/me/preferences", json={"digest": "off"}).status_code == 200
    assert alice.put(f"/api/posts/{answer['id']}/bookmark", json={"bookmarked": True}).status_code == 200
    assert alice.post("/api/me/api-keys", json={"name": "exported key", "scopes": ["read"]}).status_code == 201
    r = alice.get("/api/me/export")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    doc = r.json()
    assert doc["user"]["id"] == alice.user["id"] and doc["user"]["username"] == alice.user["username"]
    assert doc["preferences"] == {"email_notifications": "away", "digest": "off"}
    [post] = doc["posts"]
    assert post["id"] == qid and post["body"] == "second words" and post["thread"]["title"] == "Exported question"
    assert [rev["body"] for rev in post["revisions"]][:1] == ["first words"]
    assert doc["votes"] == [{"post_id": answer["id"], "value": 1, "created_at": doc["votes"][0]["created_at"]}]
    assert {"thread_id": tid, "following": True} == {k: doc["follows"][0][k] for k in ("thread_id", "following")}
    assert [n["post_id"] for n in doc["notifications"]] == [answer["id"]]
    assert [(f["post_id"], f["note"]) for f in doc["flags"]] == [(answer["id"], "my note")]
    assert [b["post_id"] for b in doc["bookmarks"]] == [answer["id"]]
    assert [k["name"] for k in doc["api_keys"]] == ["exported key"] and "token" not in r.text
    assert "bob's answer" not in r.text  # someone else's words are not theirs to take


def test_export_needs_a_user(server):
    """A guest's export is 401."""
    check_error(http.get(f"{server.url}/api/me/export"), 401)
