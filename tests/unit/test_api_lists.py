"""Thread lists: sort (activity, newest, top), filter=unanswered, keyset paging per sort, score and accepted_id."""

from __future__ import annotations

import pytest

from api_support import check_error, check_thread, posted
from support import http
from support.api import Api, new_thread, unique


@pytest.fixture(scope="module")
def board(server, forum):
    """A category of its own with a child: five threads with known scores, answers and activity."""
    mod = forum["mod"]
    slug, child = unique("list-"), unique("listc-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Lists"}).status_code == 201
    assert mod.post("/api/categories", json={"slug": child, "name": "Child", "parent": slug}).status_code == 201
    asker, helper = Api(server.url).sign_up(), Api(server.url).sign_up()
    voters = [Api(server.url).sign_up() for _ in range(3)]
    made = []
    for i in range(5):
        made.append(new_thread(asker, child if i == 2 else slug, title=f"Thread {i}")["thread"]["id"])
    scores = {made[0]: 1, made[1]: 3, made[2]: -1, made[3]: 0, made[4]: 2}
    for tid, score in scores.items():
        question = http.get(f"{server.url}/api/threads/{tid}").json()["question"]["id"]
        for v in voters[:abs(score)]:
            assert v.put(f"/api/posts/{question}/vote", json={"value": 1 if score > 0 else -1}).status_code == 200
    # Activity: thread 0 answered last; thread 3 answered and the answer deleted (unanswered again).
    posted(helper, made[1])
    gone = posted(helper, made[3])
    assert helper.delete(f"/api/posts/{gone['id']}").status_code == 204
    answer = posted(helper, made[0])
    assert asker.put(f"/api/threads/{made[0]}/accepted", json={"post_id": answer["id"]}).status_code == 200
    return {"slug": slug, "child": child, "ids": made, "scores": scores, "answer": answer["id"], "url": server.url}


def _all(url: str, path: str, limit: int = 2, **params: str) -> list[dict]:
    """Every thread of a list, page by page; asserts no page repeats a thread."""
    out, before = [], None
    while True:
        r = http.get(url + path, params={"limit": limit, **params, **({"before": before} if before else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["threads"]
        before = body["next"]
        if before is None:
            break
    ids = [t["id"] for t in out]
    assert len(ids) == len(set(ids)), ids
    return out


def test_threads_carry_score_and_accepted_id(board):
    """Each Thread in a list has its question's score and its accepted response's id (or null)."""
    threads = _all(board["url"], f"/api/categories/{board['slug']}/threads")
    for t in threads:
        check_thread(t)
        assert t["score"] == board["scores"][t["id"]]
        assert t["accepted_id"] == (board["answer"] if t["id"] == board["ids"][0] else None)


def test_each_sort_pages_in_its_order_without_duplicates(board):
    """activity, newest and top each list the category's threads (child included) in order, page by page."""
    ids, scores = board["ids"], board["scores"]
    path = f"/api/categories/{board['slug']}/threads"
    newest = [t["id"] for t in _all(board["url"], path, sort="newest")]
    assert newest == ids[::-1]
    top = [t["id"] for t in _all(board["url"], path, sort="top")]
    assert top == sorted(ids, key=lambda i: (-scores[i], -i))
    activity = [t["id"] for t in _all(board["url"], path, sort="activity")]
    assert activity[0] == ids[0] and sorted(activity) == sorted(ids)
    assert activity == [t["id"] for t in _all(board["url"], path)]  # the default
    assert [t["id"] for t in _all(board["url"], f"/api/categories/{board['child']}/threads", sort="top")] == [ids[2]]


def test_unanswered_lists_threads_without_a_live_response(board):
    """filter=unanswered keeps threads with no non-deleted response, in every sort, site-wide too."""
    ids = board["ids"]
    path = f"/api/categories/{board['slug']}/threads"
    for sort in ("activity", "newest", "top"):
        got = [t["id"] for t in _all(board["url"], path, limit=1, sort=sort, filter="unanswered")]
        assert sorted(got) == sorted([ids[2], ids[3], ids[4]]), (sort, got)
        assert all(t["response_count"] == 0 for t in _all(board["url"], path, sort=sort, filter="unanswered"))
    site = http.get(board["url"] + "/api/threads", params={"filter": "unanswered", "limit": 100}).json()["threads"]
    assert all(t["response_count"] == 0 for t in site) and ids[1] not in [t["id"] for t in site]
    top = http.get(board["url"] + "/api/threads", params={"sort": "top", "limit": 100}).json()["threads"]
    assert [t["score"] for t in top] == sorted((t["score"] for t in top), reverse=True)


def test_bad_sort_filter_and_cursor_are_400(board):
    """An unknown sort or filter, or a malformed cursor, is a 400 naming the parameter; a cursor of another sort
    (or one the server did not make) names no position of this list: 404 bad_cursor."""
    url = board["url"] + "/api/threads"
    check_error(http.get(url, params={"sort": "loudest"}), 400, field="sort")
    check_error(http.get(url, params={"filter": "everything"}), 400, field="filter")
    nxt = http.get(url, params={"sort": "top", "limit": 1}).json()["next"]
    assert nxt is not None
    check_error(http.get(url, params={"sort": "newest", "before": nxt}), 404, "bad_cursor", "before")
    check_error(http.get(url, params={"before": nxt}), 404, "bad_cursor", "before")
    check_error(http.get(url, params={"sort": "top", "before": "bm90IGEgY3Vyc29y"}), 404, "bad_cursor", "before")
    check_error(http.get(url, params={"sort": "top", "before": "not a cursor"}), 400, "bad_cursor", "before")
