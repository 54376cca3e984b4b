"""Accepted answers: who may accept, what may be accepted, withdrawal, the live event, and `top` order."""

from __future__ import annotations

import httpx

from api_support import check_error, check_thread, posted
from support import http
from support.api import Api, new_thread


def _events(url: str, tid: int, since: int) -> list[dict]:
    return http.get(f"{url}/api/threads/{tid}/events", params={"since": since}).json()["events"]


def _accept(api: Api, tid: int, post_id: int | None) -> httpx.Response:
    return api.put(f"/api/threads/{tid}/accepted", json={"post_id": post_id})


def test_asker_accepts_and_withdraws_with_thread_updated_events(server, forum):
    """The asker accepts a response (200, accepted_id set, a thread.updated event), and null withdraws it."""
    asker, helper = Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    answer = posted(helper, tid, "Try turning it off and on")
    r = _accept(asker, tid, answer["id"])
    assert r.status_code == 200, r.text
    thread = r.json()["thread"]
    check_thread(thread)
    assert thread["accepted_id"] == answer["id"] and thread["seq"] == 3
    events = _events(server.url, tid, 2)
    assert [(e["seq"], e["name"]) for e in events] == [(3, "thread.updated")]
    assert events[0]["data"] == thread
    # Accepting the same one again changes nothing and makes no event.
    assert _accept(asker, tid, answer["id"]).json()["thread"]["seq"] == 3
    assert http.get(f"{server.url}/api/threads/{tid}").json()["thread"]["accepted_id"] == answer["id"]
    r = _accept(asker, tid, None)
    assert r.status_code == 200 and r.json()["thread"]["accepted_id"] is None
    assert [e["data"]["accepted_id"] for e in _events(server.url, tid, 3)] == [None]


def test_only_the_asker_or_a_moderator_may_accept(server, forum):
    """Another user gets 403, a guest 401; a moderator may accept in someone else's thread."""
    asker, helper = Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    answer = posted(helper, tid)
    check_error(_accept(helper, tid, answer["id"]), 403)
    check_error(http.put(f"{server.url}/api/threads/{tid}/accepted", json={"post_id": answer["id"]}), 401)
    r = _accept(forum["mod"], tid, answer["id"])
    assert r.status_code == 200 and r.json()["thread"]["accepted_id"] == answer["id"]
    check_error(_accept(asker, 10**15, answer["id"]), 404)


def test_only_a_live_response_of_this_thread_can_be_accepted(server, forum):
    """The question, a comment, a deleted response, another thread's response or id 0 → 422 post_id; an id
    nobody has → 404 post_id."""
    asker, helper = Api(server.url).sign_up(), Api(server.url).sign_up()
    created = new_thread(asker, forum["category"])
    tid = created["thread"]["id"]
    answer = posted(helper, tid)
    comment = posted(helper, tid, "a comment", parent_id=answer["id"])
    gone = posted(helper, tid, "soon gone")
    assert helper.delete(f"/api/posts/{gone['id']}").status_code == 204
    other = posted(helper, new_thread(asker, forum["category"])["thread"]["id"])
    for bad in (created["question"]["id"], comment["id"], gone["id"], other["id"], 0):
        check_error(_accept(asker, tid, bad), 422, field="post_id")
    check_error(_accept(asker, tid, 10**15), 404, field="post_id")
    check_error(asker.put(f"/api/threads/{tid}/accepted", json={}), 422, field="post_id")
    check_error(asker.put(f"/api/threads/{tid}/accepted", json={"post_id": "x"}), 422, field="post_id")
    assert http.get(f"{server.url}/api/threads/{tid}").json()["thread"]["accepted_id"] is None


def test_deleting_the_accepted_response_withdraws_it(server, forum):
    """Deleting the accepted response clears accepted_id, with post.deleted then thread.updated events."""
    asker, helper = Api(server.url).sign_up(), Api(server.url).sign_up()
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    answer = posted(helper, tid)
    seq = _accept(asker, tid, answer["id"]).json()["thread"]["seq"]
    assert helper.delete(f"/api/posts/{answer['id']}").status_code == 204
    events = _events(server.url, tid, seq)
    assert [e["name"] for e in events] == ["post.deleted", "thread.updated"]
    assert events[1]["data"]["accepted_id"] is None
    page = http.get(f"{server.url}/api/threads/{tid}").json()
    assert page["thread"]["accepted_id"] is None and page["thread"]["seq"] == seq + 2


def test_top_sort_puts_the_accepted_response_first_and_pages_without_duplicates(server, forum):
    """With sort=top the accepted (low-scored) response comes first; paging by 1 lists each response once."""
    asker, helper, voter = (Api(server.url).sign_up() for _ in range(3))
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    ids = [posted(helper, tid, f"answer {i}")["id"] for i in range(4)]
    for pid in ids[1:3]:
        assert voter.put(f"/api/posts/{pid}/vote", json={"value": 1}).status_code == 200
    _accept(asker, tid, ids[3])
    page = http.get(f"{server.url}/api/threads/{tid}", params={"sort": "top"}).json()
    assert [p["id"] for p in page["responses"]] == [ids[3], ids[1], ids[2], ids[0]]
    seen, after = [], None
    while True:
        params = {"sort": "top", "limit": 1, **({"after": after} if after else {})}
        page = http.get(f"{server.url}/api/threads/{tid}", params=params).json()
        seen += [p["id"] for p in page["responses"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [ids[3], ids[1], ids[2], ids[0]]
    oldest = http.get(f"{server.url}/api/threads/{tid}").json()
    assert [p["id"] for p in oldest["responses"]] == ids
