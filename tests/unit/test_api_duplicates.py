"""Duplicates and bookmarks over HTTP: a moderator marks a thread a duplicate (event, log, no new responses),
and a user bookmarks posts and lists them on their own page."""

from __future__ import annotations

from api_support import check_error, check_post, check_thread, posted, reply
from support import http
from support.api import Api, new_thread


def _mark(api: Api, tid: int, of: int | None) -> object:
    return api.put(f"/api/threads/{tid}/duplicate", json={"of": of})


def test_moderator_marks_a_duplicate_which_takes_no_new_responses(server, forum):
    """PUT duplicate (moderator) → 200 with duplicate_of {id, title}, a thread.updated event and a public
    thread.duplicate log entry; a response is then 409 thread_duplicate (a comment still goes in); null lifts it."""
    mod, asker, helper = forum["mod"], Api(server.url).sign_up(), Api(server.url).sign_up()
    original = new_thread(asker, forum["category"], "How do I boil an egg")["thread"]
    dup = new_thread(asker, forum["category"], "Boiling eggs?")["thread"]
    answer = posted(helper, dup["id"], "An early answer")
    r = _mark(mod, dup["id"], original["id"])
    assert r.status_code == 200, r.text
    thread = r.json()["thread"]
    check_thread(thread)
    assert thread["duplicate_of"] == {"id": original["id"], "title": "How do I boil an egg"}
    events = http.get(f"{server.url}/api/threads/{dup['id']}/events", params={"since": 2}).json()["events"]
    assert [e["name"] for e in events] == ["thread.updated"]
    assert events[0]["data"]["duplicate_of"] == {"id": original["id"], "title": "How do I boil an egg"}
    entry = http.get(f"{server.url}/api/modlog").json()["entries"][0]
    assert entry["action"] == "thread.duplicate" and entry["target"]["thread_id"] == dup["id"]
    check_error(reply(helper, dup["id"], "Too late"), 409, code="thread_duplicate")
    assert reply(helper, dup["id"], "A comment", parent_id=answer["id"]).status_code == 201
    listed = http.get(f"{server.url}/api/threads", params={"limit": 50}).json()["threads"]
    assert next(t for t in listed if t["id"] == dup["id"])["duplicate_of"]["id"] == original["id"]
    lifted = _mark(mod, dup["id"], None)
    assert lifted.status_code == 200 and lifted.json()["thread"]["duplicate_of"] is None
    assert reply(helper, dup["id"], "Now it takes answers").status_code == 201


def test_duplicate_rules(server, forum):
    """Only moderators mark (403); itself or a duplicate as the original is 422 field of; an unknown original
    is 404; a deleted original no longer makes a duplicate of it."""
    mod, asker = forum["mod"], Api(server.url).sign_up()
    a = new_thread(asker, forum["category"], "First")["thread"]["id"]
    b = new_thread(asker, forum["category"], "Second")["thread"]["id"]
    c = new_thread(asker, forum["category"], "Third")
    check_error(_mark(asker, b, a), 403)
    check_error(_mark(mod, a, a), 422, field="of")
    check_error(_mark(mod, a, 2**62), 404)
    assert _mark(mod, b, a).status_code == 200
    check_error(_mark(mod, c["thread"]["id"], b), 422, field="of")
    assert _mark(mod, c["thread"]["id"], a).status_code == 200
    question = http.get(f"{server.url}/api/threads/{a}").json()["question"]["id"]
    assert mod.delete(f"/api/posts/{question}").status_code == 204
    thread = http.get(f"{server.url}/api/threads/{b}").json()["thread"]
    assert thread["duplicate_of"] is None
    assert reply(asker, b, "Answerable again").status_code == 201


def test_bookmarks_are_listed_newest_first_on_the_users_own_page(server, forum):
    """PUT bookmark true/false → 200; GET /api/me/bookmarks lists the bookmarked live posts, newest bookmark
    first, each with its thread, paged by cursor; a deleted post leaves the list; guests get 401; an unknown
    post is 404; another user's list is their own."""
    asker, reader, other = (Api(server.url).sign_up() for _ in range(3))
    made = new_thread(asker, forum["category"], "Worth keeping")
    tid, question = made["thread"]["id"], made["question"]
    answers = [posted(asker, tid, f"Answer {i}") for i in range(3)]
    for post in (question, *answers):
        r = reader.put(f"/api/posts/{post['id']}/bookmark", json={"bookmarked": True})
        assert r.status_code == 200 and r.json() == {"bookmarked": True}
    assert reader.put(f"/api/posts/{answers[0]['id']}/bookmark", json={"bookmarked": True}).status_code == 200
    seen, before = [], None
    while True:
        page = reader.get("/api/me/bookmarks", params={"limit": 2, **({"before": before} if before else {})}).json()
        for post in page["posts"]:
            check_post({k: v for k, v in post.items() if k != "thread"})
            assert post["thread"] == {"id": tid, "title": "Worth keeping"}
        seen += [p["id"] for p in page["posts"]]
        before = page["next"]
        if before is None:
            break
    assert seen == [answers[2]["id"], answers[1]["id"], answers[0]["id"], question["id"]]
    assert reader.put(f"/api/posts/{answers[1]['id']}/bookmark", json={"bookmarked": False}).json() == {
        "bookmarked": False}
    assert asker.delete(f"/api/posts/{answers[2]['id']}").status_code == 204
    assert [p["id"] for p in reader.get("/api/me/bookmarks").json()["posts"]] == [answers[0]["id"], question["id"]]
    assert other.get("/api/me/bookmarks").json() == {"posts": [], "next": None}
    check_error(reader.put(f"/api/posts/{answers[2]['id']}/bookmark", json={"bookmarked": True}), 404)
    check_error(reader.put(f"/api/posts/{2**62}/bookmark", json={"bookmarked": True}), 404)
    check_error(http.get(f"{server.url}/api/me/bookmarks"), 401)
    check_error(reader.put(f"/api/posts/{question['id']}/bookmark", json={"bookmarked": "yes"}), 422,
                field="bookmarked")
