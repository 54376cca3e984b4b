"""Ignoring (CONTRACT rev. 3 "Trust and spam"): the ignored member's posts come to the ignorer collapsed
(`ignored: true`), none of their actions notifies (or so mails) the ignorer, and moderators cannot be ignored."""

from __future__ import annotations

from api_support import check_error, posted
from support.api import Api, new_thread


def test_an_ignored_members_posts_are_collapsed_and_notify_nothing(server, forum):
    """Ada ignores Bob: Bob's answer to Ada's question and his mention of her notify her not; the posts carry
    ignored: true for her only; after she stops ignoring, his next answer notifies her again."""
    ada, bob, cy = Api(server.url).sign_up(), Api(server.url).sign_up(), Api(server.url).sign_up()
    r = ada.put(f"/api/users/{bob.user['username']}/ignored", json={"ignored": True})
    assert r.status_code == 200 and r.json() == {"ignored": True}
    tid = new_thread(ada, forum["category"])["thread"]["id"]
    answer = posted(bob, tid, f"Hi @{ada.user['username']}")
    accepted_by_cy = posted(cy, tid, "Another answer")
    comment = posted(bob, tid, "a comment under Cy's", parent_id=accepted_by_cy["id"])
    notes = ada.get("/api/notifications").json()
    assert [n["post_id"] for n in notes["notifications"]] == [accepted_by_cy["id"]]
    page = ada.get(f"/api/threads/{tid}").json()
    marks = {r["id"]: r.get("ignored", False) for r in page["responses"]}
    assert marks == {answer["id"]: True, accepted_by_cy["id"]: False}
    assert page["responses"][1]["comments"][0]["id"] == comment["id"]
    assert page["responses"][1]["comments"][0]["ignored"] is True
    assert all("ignored" not in r for r in cy.get(f"/api/threads/{tid}").json()["responses"])
    assert ada.put(f"/api/users/{bob.user['username']}/ignored", json={"ignored": False}).json() == {
        "ignored": False}
    again = posted(bob, tid, "Still here")
    assert again["id"] in [n["post_id"] for n in ada.get("/api/notifications").json()["notifications"]]
    assert all("ignored" not in r for r in ada.get(f"/api/threads/{tid}").json()["responses"])


def test_an_ignored_members_tagged_question_notifies_nothing(server, forum):
    """Ada follows a tag and ignores Bob: Bob's question with that tag notifies her not, Cy's does (kind tagged)."""
    import uuid
    ada, bob, cy = Api(server.url).sign_up(), Api(server.url).sign_up(), Api(server.url).sign_up()
    tag = "ign" + uuid.uuid4().hex[:8]
    first = cy.post("/api/threads", json={"category": forum["category"], "title": "Makes the tag", "body": "b",
                                          "tags": [tag]})
    assert first.status_code == 201, first.text
    assert ada.put(f"/api/tags/{tag}/following", json={"following": True}).status_code == 200
    assert ada.put(f"/api/users/{bob.user['username']}/ignored", json={"ignored": True}).status_code == 200
    for asker in (bob, cy):
        r = asker.post("/api/threads", json={"category": forum["category"], "title": "Tagged", "body": "b",
                                             "tags": [tag]})
        assert r.status_code == 201, r.text
    notes = ada.get("/api/notifications").json()["notifications"]
    assert [(n["kind"], n["actor"]["username"]) for n in notes] == [("tagged", cy.user["username"])]


def test_moderators_oneself_and_nobody_cannot_be_ignored(server, forum):
    """A moderator or oneself → 422 field username; an unknown name → 404; a guest → 401."""
    ada = Api(server.url).sign_up()
    check_error(ada.put(f"/api/users/{forum['mod'].user['username']}/ignored", json={"ignored": True}), 422,
                field="username")
    check_error(ada.put(f"/api/users/{ada.user['username']}/ignored", json={"ignored": True}), 422, field="username")
    check_error(ada.put("/api/users/nobody-at-all-here/ignored", json={"ignored": True}), 404)
    check_error(Api(server.url).put(f"/api/users/{ada.user['username']}/ignored", json={"ignored": True}), 401)


def test_ignored_posts_are_marked_in_permalinks_profiles_and_search(server, forum):
    """Ada ignores Bob: his post's permalink, his profile's posts and a search finding it carry ignored: true for
    her, and for Cy nothing is marked."""
    import uuid
    ada, bob, cy = Api(server.url).sign_up(), Api(server.url).sign_up(), Api(server.url).sign_up()
    assert ada.put(f"/api/users/{bob.user['username']}/ignored", json={"ignored": True}).status_code == 200
    word = "zq" + uuid.uuid4().hex[:10]
    tid = new_thread(cy, forum["category"])["thread"]["id"]
    answer = posted(bob, tid, f"An answer with {word}")
    own = posted(cy, tid, f"Cy's answer with {word}")
    assert ada.get(f"/api/posts/{answer['id']}").json()["post"]["ignored"] is True
    assert "ignored" not in ada.get(f"/api/posts/{own['id']}").json()["post"]
    assert [p.get("ignored") for p in ada.get(f"/api/users/{bob.user['username']}/posts").json()["posts"]] == [True]
    found = {r["post"]["id"]: r["post"].get("ignored", False)
             for r in ada.get("/api/search", params={"q": word}).json()["results"]}
    assert found == {answer["id"]: True, own["id"]: False}
    assert "ignored" not in cy.get(f"/api/posts/{answer['id']}").json()["post"]
    assert all("ignored" not in r["post"] for r in cy.get("/api/search", params={"q": word}).json()["results"])
    assert all("ignored" not in p for p in cy.get(f"/api/users/{bob.user['username']}/posts").json()["posts"])
    profile = f"/api/users/{bob.user['username']}"
    assert ada.get(profile).json()["user"]["ignored"] is True
    assert cy.get(profile).json()["user"]["ignored"] is False
    assert "ignored" not in bob.get(profile).json()["user"] and "ignored" not in Api(server.url).get(profile).json()[
        "user"]
