"""Profiles, a user's posts and post permalinks: shapes, stats after deletes, paging, 404s."""

from __future__ import annotations

from api_support import POST, TIME, USER_FULL, check_error, posted
from support import http
from support.api import Api, new_thread


def _profile(url: str, name: str) -> dict:
    r = http.get(f"{url}/api/users/{name}")
    assert r.status_code == 200, r.text
    return r.json()["user"]


def test_profile_shape_and_stats_follow_deletes_and_accepts(server, forum):
    """A Profile is a full user + last_seen_at, suspended_until, stats, reputation, silenced; stats and reputation
    count live posts only."""
    alice, bob, carol = (Api(server.url).sign_up() for _ in range(3))
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    kept, gone = posted(bob, tid, "kept"), posted(bob, tid, "gone")
    posted(bob, tid, "a comment", parent_id=kept["id"])
    assert carol.put(f"/api/posts/{kept['id']}/vote", json={"value": 1}).status_code == 200
    assert alice.put(f"/api/posts/{gone['id']}/vote", json={"value": 1}).status_code == 200
    assert alice.put(f"/api/threads/{tid}/accepted", json={"post_id": kept["id"]}).status_code == 200
    user = _profile(server.url, bob.user["username"].upper())
    assert set(user) == USER_FULL | {"last_seen_at", "suspended_until", "stats", "reputation", "silenced"}
    assert user["reputation"] == 1 + 10 + 10 + 15 and user["silenced"] is False
    assert _profile(server.url, alice.user["username"])["reputation"] == 1 + 2
    assert user["id"] == bob.user["id"] and user["suspended_until"] is None and TIME.match(user["last_seen_at"])
    assert user["stats"] == {"questions": 0, "responses": 2, "comments": 1, "accepted": 1, "score": 2}
    assert bob.delete(f"/api/posts/{gone['id']}").status_code == 204
    assert _profile(server.url, bob.user["username"])["stats"] == {
        "questions": 0, "responses": 1, "comments": 1, "accepted": 1, "score": 1}
    assert _profile(server.url, bob.user["username"])["reputation"] == 1 + 10 + 15
    assert bob.delete(f"/api/posts/{kept['id']}").status_code == 204  # the accepted one: withdrawn
    assert _profile(server.url, bob.user["username"])["stats"]["accepted"] == 0
    assert _profile(server.url, bob.user["username"])["reputation"] == 1
    assert _profile(server.url, alice.user["username"])["reputation"] == 1
    assert _profile(server.url, alice.user["username"])["stats"]["questions"] == 1
    # A deleted thread takes its posts out of the counts.
    assert forum["mod"].delete(f"/api/posts/{http.get(f'{server.url}/api/threads/{tid}').json()['question']['id']}"
                               ).status_code == 204
    assert _profile(server.url, bob.user["username"])["stats"] == {
        "questions": 0, "responses": 0, "comments": 0, "accepted": 0, "score": 0}


def test_unknown_user_is_404(server):
    """An unknown username, for the profile and for the posts, is a 404 error body."""
    check_error(http.get(f"{server.url}/api/users/nobody-at-all-here"), 404)
    check_error(http.get(f"{server.url}/api/users/nobody-at-all-here/posts"), 404)
    check_error(http.get(f"{server.url}/api/users/{'x' * 40}"), 404)


def test_user_posts_newest_first_paged_with_their_thread(server, forum):
    """GET /api/users/NAME/posts lists live posts newest first with {thread: {id, title}}, paged by `before`."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    t1 = new_thread(alice, forum["category"], title="First")["thread"]["id"]
    t2 = new_thread(alice, forum["category"], title="Second")["thread"]["id"]
    made = [posted(bob, t1, "one")["id"], posted(bob, t2, "two")["id"], posted(bob, t1, "three")["id"]]
    gone = posted(bob, t2, "four")["id"]
    assert bob.delete(f"/api/posts/{gone}").status_code == 204
    seen, before = [], None
    while True:
        r = http.get(f"{server.url}/api/users/{bob.user['username']}/posts",
                      params={"limit": 2, **({"before": before} if before else {})})
        assert r.status_code == 200, r.text
        for p in r.json()["posts"]:
            assert set(p) == POST | {"thread"}
            assert p["thread"] == {"id": p["thread_id"], "title": "First" if p["thread_id"] == t1 else "Second"}
        seen += [p["id"] for p in r.json()["posts"]]
        before = r.json()["next"]
        if before is None:
            break
    assert seen == made[::-1]
    # Not shaped like a cursor: 400; shaped like one but no position of this list: 404 (docs/api.md, Errors).
    check_error(http.get(f"{server.url}/api/users/{bob.user['username']}/posts", params={"before": "z!"}), 400,
                field="before")
    check_error(http.get(f"{server.url}/api/users/{bob.user['username']}/posts", params={"before": "zz"}), 404,
                "bad_cursor", field="before")


def test_permalink_of_a_comment_on_a_later_page(server, forum):
    """GET /api/posts/ID gives {post, thread, after}; `after` opens the thread page at the comment's response."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = new_thread(alice, forum["category"])["thread"]["id"]
    responses = [posted(bob, tid, f"answer {i}")["id"] for i in range(6)]
    comment = posted(alice, tid, "the comment", parent_id=responses[4])
    assert alice.patch(f"/api/posts/{comment['id']}", json={"body": "the comment, edited"}).status_code == 200
    r = http.get(f"{server.url}/api/posts/{comment['id']}")
    assert r.status_code == 200, r.text
    link = r.json()
    assert set(link) == {"post", "thread", "after"}
    assert link["post"]["body"] == "the comment, edited" and link["post"]["revision"] == 2
    assert link["thread"]["id"] == tid and link["thread"]["accepted_id"] is None
    page = http.get(f"{server.url}/api/threads/{tid}", params={"limit": 2, "after": link["after"]}).json()
    assert page["responses"][0]["id"] == responses[4]
    assert [c["id"] for c in page["responses"][0]["comments"]] == [comment["id"]]
    question = http.get(f"{server.url}/api/threads/{tid}").json()["question"]["id"]
    assert http.get(f"{server.url}/api/posts/{question}").json()["after"] is None


def test_permalink_of_a_deleted_post_says_so_and_of_a_deleted_thread_is_404(server, forum):
    """A deleted post's permalink answers deleted: true with no text; in a deleted thread, or unknown: 404."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    created = new_thread(alice, forum["category"])
    answer = posted(bob, created["thread"]["id"], "secret words")
    assert bob.delete(f"/api/posts/{answer['id']}").status_code == 204
    post = http.get(f"{server.url}/api/posts/{answer['id']}").json()["post"]
    assert post["deleted"] is True and post["body"] == "" and post["html"] == ""
    assert forum["mod"].delete(f"/api/posts/{created['question']['id']}").status_code == 204
    check_error(http.get(f"{server.url}/api/posts/{answer['id']}"), 404)
    check_error(http.get(f"{server.url}/api/posts/{10**15}"), 404)
    check_error(http.get(f"{server.url}/api/posts/abc"), 400)


def test_permalink_carries_the_readers_vote(server, forum):
    """Signed in, the permalinked post's my_vote is the reader's own vote."""
    alice, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    answer = posted(bob, new_thread(alice, forum["category"])["thread"]["id"])
    assert alice.put(f"/api/posts/{answer['id']}/vote", json={"value": -1}).status_code == 200
    assert alice.get(f"/api/posts/{answer['id']}").json()["post"]["my_vote"] == -1
    assert http.get(f"{server.url}/api/posts/{answer['id']}").json()["post"]["my_vote"] == 0
