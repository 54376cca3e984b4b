"""Tags on questions over HTTP: validation (422 field tags), creation and retagging, the tag list with counts,
both thread lists filtered by tag, following a tag and its `tagged` notification."""

from __future__ import annotations

from typing import Any

import pytest

from api_support import check_error, check_thread
from support import http
from support.api import Api, unique


def _ask(api: Api, category: str, tags: list[str], title: str = "A question") -> Any:
    return api.post("/api/threads", json={"category": category, "title": title, "body": "Body text", "tags": tags})


def _asked(api: Api, category: str, tags: list[str], title: str = "A question") -> dict[str, Any]:
    r = _ask(api, category, tags, title)
    assert r.status_code == 201, r.text
    return r.json()["thread"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("tags", [
    ["has space"], [" lead"], ["tab\there"], ["pyth\u043en"],  # Cyrillic o
    ["\u212aelvin"],  # the Kelvin sign, which str.lower() folds to an ASCII k
    ["ｐython"],  # fullwidth
    ["a", "b", "c", "d", "e", "f"], ["x" * 33], [""], ["under_score"], ["slash/tag"], ["c++\n"], [7],
])
def test_bad_tags_are_422_field_tags(server, forum, tags):
    """Uppercase is folded; spaces, look-alikes, other characters, six tags, 33 characters, empty: 422 field tags."""
    api = Api(server.url).sign_up()
    check_error(_ask(api, forum["category"], tags), 422, field="tags")


def test_tags_are_folded_kept_in_order_once_and_shown_on_the_thread(server, forum):
    """Capitals fold to lower case, a repeated name counts once, the order given is kept; the thread page, the
    lists and the answer carry them."""
    api = Api(server.url).sign_up()
    a, b = unique("t-"), unique("c++.")
    thread = _asked(api, forum["category"], [a.upper(), b, a, "x" * 32])
    check_thread(thread)
    assert thread["tags"] == [a, b, "x" * 32] and thread["duplicate_of"] is None
    page = http.get(f"{server.url}/api/threads/{thread['id']}").json()
    assert page["thread"]["tags"] == [a, b, "x" * 32]
    listed = http.get(f"{server.url}/api/threads", params={"tag": a.upper()}).json()["threads"]
    assert [t["id"] for t in listed] == [thread["id"]] and listed[0]["tags"] == [a, b, "x" * 32]


def test_both_lists_filter_by_tag_in_every_sort_with_cursors(server, forum):
    """Site-wide and category lists with &tag= hold only that tag's threads, in each sort, paged by cursor; an
    unknown tag lists nothing; a malformed one is 400 field tag."""
    api = Api(server.url).sign_up()
    tag = unique("f-")
    ids = [_asked(api, forum["category"], [tag], f"Tagged {i}")["id"] for i in range(5)]
    _asked(api, forum["category"], [unique("other-")])
    for path in ("/api/threads", f"/api/categories/{forum['category']}/threads"):
        for sort in ("activity", "newest", "top"):
            seen, before = [], None
            while True:
                params = {"tag": tag, "sort": sort, "limit": 2, **({"before": before} if before else {})}
                r = http.get(f"{server.url}{path}", params=params)
                assert r.status_code == 200, r.text
                seen += [t["id"] for t in r.json()["threads"]]
                before = r.json()["next"]
                if before is None:
                    break
            assert sorted(seen) == sorted(ids) and len(seen) == 5, (path, sort, seen)
        unanswered = http.get(f"{server.url}{path}", params={"tag": tag, "filter": "unanswered"}).json()
        assert len(unanswered["threads"]) == 5
    assert http.get(f"{server.url}/api/threads", params={"tag": unique("none-")}).json() == {"threads": [],
                                                                                             "next": None}
    check_error(http.get(f"{server.url}/api/threads", params={"tag": "no space"}), 400, field="tag")


def test_tag_list_counts_live_threads_by_count_and_prefix(server, forum):
    """GET /api/tags lists tags with the number of live threads carrying them, most used first; q is a prefix
    (any case); a retag moves the counts and a deleted thread no longer counts."""
    api = Api(server.url).sign_up()
    stem = unique("p")
    big, small = f"{stem}-big", f"{stem}-small"
    first = _asked(api, forum["category"], [big, small])
    _asked(api, forum["category"], [big])
    r = http.get(f"{server.url}/api/tags", params={"q": stem.upper()})
    assert r.status_code == 200
    assert r.json() == {"tags": [{"name": big, "count": 2}, {"name": small, "count": 1}]}
    retag = api.patch(f"/api/threads/{first['id']}", json={"tags": [small]})
    assert retag.status_code == 200, retag.text
    assert retag.json()["thread"]["tags"] == [small]
    assert http.get(f"{server.url}/api/tags", params={"q": stem}).json()["tags"] == [
        {"name": big, "count": 1}, {"name": small, "count": 1}]
    mod = forum["mod"]
    assert mod.delete(f"/api/posts/{_question_id(server.url, first['id'])}").status_code == 204
    assert http.get(f"{server.url}/api/tags", params={"q": stem}).json()["tags"] == [{"name": big, "count": 1}]
    assert http.get(f"{server.url}/api/tags", params={"q": "no space"}).json() == {"tags": []}


def _question_id(url: str, thread_id: int) -> int:
    return http.get(f"{url}/api/threads/{thread_id}").json()["question"]["id"]  # type: ignore[no-any-return]


def test_retag_is_a_thread_updated_event_and_only_for_author_or_moderator(server, forum):
    """PATCH tags by the author is one thread.updated event carrying the new tags; someone else is 403; the same
    tags again change nothing; [] removes them all."""
    author, other = Api(server.url).sign_up(), Api(server.url).sign_up()
    thread = _asked(author, forum["category"], [unique("r-")])
    new = unique("n-")
    check_error(other.patch(f"/api/threads/{thread['id']}", json={"tags": [new]}), 403)
    r = author.patch(f"/api/threads/{thread['id']}", json={"tags": [new]})
    assert r.status_code == 200 and r.json()["thread"]["tags"] == [new]
    events = http.get(f"{server.url}/api/threads/{thread['id']}/events", params={"since": 1}).json()["events"]
    assert [e["name"] for e in events] == ["thread.updated"] and events[0]["data"]["tags"] == [new]
    again = author.patch(f"/api/threads/{thread['id']}", json={"tags": [new.upper()]})
    assert again.json()["thread"]["seq"] == 2
    assert author.patch(f"/api/threads/{thread['id']}", json={"tags": []}).json()["thread"]["tags"] == []


def test_following_a_tag_notifies_new_questions_with_kind_tagged(server, forum):
    """A follower of a tag gets one `tagged` notification per new question carrying it (not the asker, not twice
    for two followed tags of one question); unfollowing stops it; following an unknown tag is 404."""
    asker, fan = Api(server.url).sign_up(), Api(server.url).sign_up()
    a, b = unique("fa-"), unique("fb-")
    _asked(asker, forum["category"], [a, b], "Seeding the tags")
    for name in (a, b):
        r = fan.put(f"/api/tags/{name.upper()}/following", json={"following": True})
        assert r.status_code == 200 and r.json() == {"following": True}
    asker.put(f"/api/tags/{a}/following", json={"following": True})
    thread = _asked(asker, forum["category"], [a, b], "New tagged question")
    notes = fan.get("/api/notifications").json()
    tagged = [n for n in notes["notifications"] if n["kind"] == "tagged"]
    assert len(tagged) == 1 and tagged[0]["thread"] == {"id": thread["id"], "title": "New tagged question"}
    assert tagged[0]["actor"]["id"] == asker.user["id"] and tagged[0]["post_id"] == _question_id(server.url,
                                                                                                  thread["id"])
    assert not [n for n in asker.get("/api/notifications").json()["notifications"] if n["kind"] == "tagged"]
    assert fan.put(f"/api/tags/{a}/following", json={"following": False}).json() == {"following": False}
    assert fan.put(f"/api/tags/{b}/following", json={"following": False}).json() == {"following": False}
    _asked(asker, forum["category"], [a], "Not heard")
    assert len([n for n in fan.get("/api/notifications").json()["notifications"] if n["kind"] == "tagged"]) == 1
    check_error(fan.put(f"/api/tags/{unique('nope-')}/following", json={"following": True}), 404)
    check_error(fan.put("/api/tags/bad%20name/following", json={"following": True}), 400, field="name")
    check_error(http.put(f"{server.url}/api/tags/{a}/following", json={"following": True}), 401)


def test_retagging_with_a_followed_tag_notifies_its_followers_once(server, forum):
    """A thread given a followed tag later notifies that tag's followers (kind tagged, the asker as actor) once:
    removing and giving the tag back, or giving a second followed tag, notifies nobody again; the asker's own
    follow, and a follower who ignores the asker, hear nothing."""
    asker, fan, other, sulky = (Api(server.url).sign_up() for _ in range(4))
    followed, second = unique("rt-"), unique("rs-")
    _asked(other, forum["category"], [followed, second], "Seeding the tags")
    for api in (fan, asker, sulky):
        assert api.put(f"/api/tags/{followed}/following", json={"following": True}).status_code == 200
    assert fan.put(f"/api/tags/{second}/following", json={"following": True}).status_code == 200
    assert sulky.put(f"/api/users/{asker.user['username']}/ignored", json={"ignored": True}).status_code == 200
    thread = _asked(asker, forum["category"], [unique("plain-")], "Untagged at first")

    def tagged(api: Api) -> list[dict[str, Any]]:
        return [n for n in api.get("/api/notifications").json()["notifications"] if n["kind"] == "tagged"]

    assert tagged(fan) == []
    r = other.patch(f"/api/threads/{thread['id']}", json={"tags": [followed]})  # not the author: refused
    check_error(r, 403)
    assert asker.patch(f"/api/threads/{thread['id']}", json={"tags": [followed]}).status_code == 200
    heard = tagged(fan)
    assert len(heard) == 1 and heard[0]["thread"]["id"] == thread["id"]
    assert heard[0]["actor"]["id"] == asker.user["id"] and heard[0]["post_id"] == _question_id(server.url,
                                                                                                thread["id"])
    assert tagged(asker) == [] and tagged(sulky) == []
    for tags in ([], [followed], [followed, second]):
        assert asker.patch(f"/api/threads/{thread['id']}", json={"tags": tags}).status_code == 200
    assert len(tagged(fan)) == 1
