"""Search operators tag:, user:, is:accepted, is:unanswered, in:title against a seeded corpus, combined with the
existing syntax; unknown operators are words; repeated or empty operators are bounded and never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from api_support import check_error, posted
from server.store.search import Filters, NoMatch, operators, titled
from support import http
from support.api import Api, unique


def test_operators_are_parsed_out_of_the_words():
    """Known operators leave the words; unknown names, other values and quoted ones stay words; `tag:` alone is
    dropped; capitals fold; a sixth distinct tag or a malformed one can match nothing."""
    assert operators("tag:Python user:ada is:accepted in:title kettle -lid") == (
        "kettle -lid", Filters(("python",), "ada", accepted=True, in_title=True))
    assert operators("foo:bar is:weird in:body x") == ("foo:bar is:weird in:body x", Filters())
    assert operators('"tag:x in:title" y') == ('"tag:x in:title" y', Filters())
    assert operators("tag: kettle") == ("kettle", Filters())
    assert operators(" ".join(["tag:a"] * 50)) == ("", Filters(("a",)))
    with pytest.raises(NoMatch):
        operators(" ".join(f"tag:t{i}" for i in range(6)))
    with pytest.raises(NoMatch):
        operators("tag:h\u00e9llo")
    with pytest.raises(NoMatch):
        operators("user:ada user:bob")
    assert titled("'kettl' & !'lid':* <-> 'x'") == "'kettl':A & !'lid':*A <-> 'x':A"


@pytest.fixture(scope="module")
def corpus(server: Any, forum: Any) -> dict[str, Any]:
    """A category of its own: ada asks about kettles (tagged, one accepted), bob answers; a title-only word."""
    ada, bob = Api(server.url).sign_up(), Api(server.url).sign_up()
    mod = forum["mod"]
    slug = unique("so-")
    assert mod.post("/api/categories", json={"slug": slug, "name": "Operators"}).status_code == 201
    tag, other = unique("k-"), unique("o-")

    def ask(api: Api, title: str, body: str, tags: list[str]) -> dict[str, Any]:
        r = api.post("/api/threads", json={"category": slug, "title": title, "body": body, "tags": tags})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    accepted = ask(ada, "Copper kettle whistles", "My kettle whistles too early", [tag])
    answer = posted(bob, accepted["thread"]["id"], "Descale the kettle spout")
    r = ada.put(f"/api/threads/{accepted['thread']['id']}/accepted", json={"post_id": answer["id"]})
    assert r.status_code == 200, r.text
    open_ = ask(ada, "Steel kettle rattles", "The kettle rattles when boiling", [tag, other])
    untagged = ask(bob, "Teapot advice", "Which kettle for a teapot", [])
    return {"slug": slug, "tag": tag, "other": other, "ada": ada.user["username"], "bob": bob.user["username"],
            "accepted": accepted, "answer": answer, "open": open_, "untagged": untagged}


def _ids(server: Any, corpus: dict[str, Any], q: str, **params: Any) -> list[int]:
    r = http.get(f"{server.url}/api/search", params={"q": q, "category": corpus["slug"], "limit": 50, **params})
    assert r.status_code == 200, r.text
    return sorted(x["post"]["id"] for x in r.json()["results"])


def _qid(made: dict[str, Any]) -> int:
    return made["question"]["id"]  # type: ignore[no-any-return]


def test_each_operator_narrows_the_words(server, corpus):
    """tag: keeps the tag's threads, user: the author's posts, is:accepted threads with an accepted answer,
    is:unanswered threads without a response, in:title the questions whose title has the words."""
    c = corpus
    every = sorted([_qid(c["accepted"]), c["answer"]["id"], _qid(c["open"]), _qid(c["untagged"])])
    assert _ids(server, c, "kettle") == every
    assert _ids(server, c, f"kettle tag:{c['tag'].upper()}") == sorted(
        [_qid(c["accepted"]), c["answer"]["id"], _qid(c["open"])])
    assert _ids(server, c, f"kettle tag:{c['tag']} tag:{c['other']}") == [_qid(c["open"])]
    assert _ids(server, c, f"kettle user:{c['bob']}") == sorted([c["answer"]["id"], _qid(c["untagged"])])
    assert _ids(server, c, "kettle is:accepted") == sorted([_qid(c["accepted"]), c["answer"]["id"]])
    assert _ids(server, c, "kettle is:unanswered") == sorted([_qid(c["open"]), _qid(c["untagged"])])
    assert _ids(server, c, "kettle in:title") == sorted([_qid(c["accepted"]), _qid(c["open"])])
    assert _ids(server, c, "spout in:title") == []
    assert _ids(server, c, f'"kettle whistles" -rattles tag:{c["tag"]}') == [_qid(c["accepted"])]
    assert _ids(server, c, f"kettle user:{c['ada']}", author=c["bob"]) == []
    assert _ids(server, c, f"kettle tag:{unique('none-')}") == []


def test_operators_alone_list_the_questions_newest_first(server, corpus):
    """Operators without words list the matching threads' questions, newest first, in either sort, paged."""
    c = corpus
    for sort in ("relevance", "newest"):
        r = http.get(f"{server.url}/api/search", params={"q": f"tag:{c['tag']}", "category": c["slug"],
                                                         "sort": sort, "limit": 1})
        assert r.status_code == 200, r.text
        first = r.json()
        assert [x["post"]["id"] for x in first["results"]] == [_qid(c["open"])]
        second = http.get(f"{server.url}/api/search", params={"q": f"tag:{c['tag']}", "category": c["slug"],
                                                              "sort": sort, "limit": 1, "before": first["next"]})
        assert [x["post"]["id"] for x in second.json()["results"]] == [_qid(c["accepted"])]
    assert _ids(server, c, "is:unanswered") == sorted([_qid(c["open"]), _qid(c["untagged"])])


def test_unknown_repeated_and_empty_operators_are_bounded(server, corpus):
    """Unknown operators are searched as words; `tag:` alone finds nothing; tag: ×50 and a sixth tag answer 200
    at once; none is a 500."""
    c = corpus
    assert _ids(server, c, "kettle colour:red") == []  # 'colour' and 'red' are words no post has
    assert _ids(server, c, "tag:") == []
    assert _ids(server, c, " ".join([f"tag:{c['tag']}"] * 11)) == sorted([_qid(c["accepted"]), _qid(c["open"])])
    assert _ids(server, c, " ".join(f"tag:t{i}" for i in range(50))[:200]) == []
    for q in ("tag:" * 50, "tag: " * 40, "in:", "is:", "user:", "tag:\u212a", "tag:" + "x" * 190, ":::", "tag:a:b"):
        r = http.get(f"{server.url}/api/search", params={"q": q})
        assert r.status_code in (200, 422), (q, r.text)
        if r.status_code == 422:
            check_error(r, 422, field="q")
