"""Following and read positions over HTTP: defaults, unfollow, unread counts in lists and on the thread
page as read positions move, the following/unread list filters, and `accepted` notifications."""

from __future__ import annotations

from typing import Any

from api_support import check_error, check_thread, posted
from support.api import Api, new_thread


def listed(api: Api, category: str, **params: Any) -> dict[int, dict[str, Any]]:
    r = api.get(f"/api/categories/{category}/threads", params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    for t in r.json()["threads"]:
        check_thread(t)
    return {t["id"]: t for t in r.json()["threads"]}


def thread_of(api: Any, tid: int) -> dict[str, Any]:
    r = api.get(f"/api/threads/{tid}")
    assert r.status_code == 200, r.text
    return r.json()["thread"]  # type: ignore[no-any-return]


def followers_notified(api: Api, post_id: int) -> list[str]:
    return [n["kind"] for n in api.get("/api/notifications").json()["notifications"] if n["post_id"] == post_id]


def test_authors_and_posters_follow_unless_they_unfollow(forum):
    """The author and a poster follow; a reader does not; after unfollowing, posting again does not
    re-follow and no `followed` notification arrives."""
    author, poster, reader, late = (Api(forum["url"]).sign_up() for _ in range(4))
    tid = new_thread(author, forum["category"])["thread"]["id"]
    posted(poster, tid, "I am in")
    assert thread_of(author, tid)["following"] is True
    assert thread_of(poster, tid)["following"] is True
    assert thread_of(reader, tid)["following"] is False
    assert thread_of(Api(forum["url"]), tid)["following"] is False  # a guest
    r = poster.put(f"/api/threads/{tid}/following", json={"following": False})
    assert r.status_code == 200 and r.json() == {"following": False}
    posted(poster, tid, "one more, still unfollowed")
    assert thread_of(poster, tid)["following"] is False
    post = posted(late, tid, "a new response")
    assert followers_notified(poster, post["id"]) == []
    r = reader.put(f"/api/threads/{tid}/following", json={"following": True})
    assert r.status_code == 200 and r.json() == {"following": True}
    post = posted(late, tid, "another")
    assert followers_notified(reader, post["id"]) == ["followed"]


def test_unread_counts_follow_the_read_position_and_never_move_backwards(forum):
    """unread is null before a read position, counts others' responses and comments after it, ignores the
    reader's own posts and deleted ones, and a read position sent lower than before changes nothing."""
    asker, reader, other = (Api(forum["url"]).sign_up() for _ in range(3))
    created = new_thread(asker, forum["category"])
    tid = created["thread"]["id"]
    assert thread_of(reader, tid)["unread"] is None
    assert thread_of(Api(forum["url"]), tid)["unread"] is None
    r = reader.put(f"/api/threads/{tid}/read", json={"seq": 1})
    assert r.status_code == 204
    assert thread_of(reader, tid)["unread"] == 0
    first = posted(other, tid, "one")
    posted(other, tid, "a comment", parent_id=first["id"])
    gone = posted(other, tid, "soon deleted")
    posted(reader, tid, "my own")  # the reader's own post moves their position to it
    assert listed(reader, forum["category"])[tid]["unread"] == 0
    r = reader.put(f"/api/threads/{tid}/read", json={"seq": 1})  # backwards: ignored
    assert r.status_code == 204 and thread_of(reader, tid)["unread"] == 0
    posted(other, tid, "after mine")
    other.delete(f"/api/posts/{gone['id']}")
    assert thread_of(reader, tid)["unread"] == 1
    # The asker's position is their question: every response and comment since then is unread.
    # one, the comment, the reader's own and "after mine" (the deleted one does not count)
    assert listed(asker, forum["category"])[tid]["unread"] == 4
    seq = thread_of(reader, tid)["seq"]
    assert reader.put(f"/api/threads/{tid}/read", json={"seq": seq + 1000}).status_code == 204  # clamped
    assert thread_of(reader, tid)["unread"] == 0


def test_following_and_unread_filters(forum):
    """filter=following lists only followed threads; filter=unread only those with unread > 0; guests get 401."""
    me, other = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    mine = new_thread(me, forum["category"], "Mine")["thread"]["id"]
    theirs = new_thread(other, forum["category"], "Theirs")["thread"]["id"]
    quiet = new_thread(other, forum["category"], "Quiet")["thread"]["id"]
    assert me.put(f"/api/threads/{quiet}/read", json={"seq": 1}).status_code == 204
    posted(other, mine, "an answer for you")
    following = listed(me, forum["category"], filter="following")
    assert mine in following and theirs not in following and quiet not in following
    unread = listed(me, forum["category"], filter="unread")
    assert set(unread) & {mine, theirs, quiet} == {mine}
    assert unread[mine]["unread"] == 1 and unread[mine]["following"] is True
    everything = me.get("/api/threads", params={"filter": "following", "limit": 100}).json()["threads"]
    assert mine in [t["id"] for t in everything]
    check_error(Api(forum["url"]).get("/api/threads?filter=following"), 401)
    check_error(Api(forum["url"]).get(f"/api/categories/{forum['category']}/threads?filter=unread"), 401)
    check_error(me.get("/api/threads?filter=nonsense"), 400, field="filter")


def test_following_and_read_refuse_bad_requests(forum):
    """Guests get 401, unknown threads 404, bad bodies 422; never a 500."""
    me = Api(forum["url"]).sign_up()
    tid = new_thread(me, forum["category"])["thread"]["id"]
    check_error(Api(forum["url"]).put(f"/api/threads/{tid}/following", json={"following": True}), 401)
    check_error(Api(forum["url"]).put(f"/api/threads/{tid}/read", json={"seq": 1}), 401)
    check_error(me.put("/api/threads/999999999/following", json={"following": True}), 404)
    check_error(me.put("/api/threads/999999999/read", json={"seq": 1}), 404)
    check_error(me.put(f"/api/threads/{tid}/following", json={"following": "yes"}), 422, field="following")
    check_error(me.put(f"/api/threads/{tid}/read", json={"seq": -1}), 422, field="seq")
    check_error(me.put(f"/api/threads/{tid}/read", json={}), 422, field="seq")


def test_accepting_a_response_notifies_its_author_and_withdrawing_takes_it_back(forum):
    """The asker accepting a response gives its author `accepted`; withdrawing the acceptance removes it."""
    asker, responder = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    resp = posted(responder, tid, "The answer")
    r = asker.put(f"/api/threads/{tid}/accepted", json={"post_id": resp["id"]})
    assert r.status_code == 200, r.text
    assert followers_notified(responder, resp["id"]) == ["accepted"]
    before = responder.get("/api/notifications").json()["unread"]
    r = asker.put(f"/api/threads/{tid}/accepted", json={"post_id": None})
    assert r.status_code == 200, r.text
    assert followers_notified(responder, resp["id"]) == []
    assert responder.get("/api/notifications").json()["unread"] == before - 1


def test_the_following_filter_pages_with_every_sort(forum):
    """limit/before page through the followed threads once each, in activity, newest and top order."""
    me, other = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    mine = [new_thread(me, forum["category"], f"Mine {i}")["thread"]["id"] for i in range(3)]
    new_thread(other, forum["category"], "Not followed")
    for sort in ("activity", "newest", "top"):
        seen, before = [], None
        while True:
            params = {"filter": "following", "sort": sort, "limit": 2, **({"before": before} if before else {})}
            r = me.get(f"/api/categories/{forum['category']}/threads", params=params)
            assert r.status_code == 200, r.text
            seen += [t["id"] for t in r.json()["threads"]]
            before = r.json()["next"]
            if before is None:
                break
        assert sorted(seen) == sorted(mine) and len(seen) == 3, (sort, seen)
