"""Search: stemming, phrases, exclusion, or, title weight, category subtree, author, edits and deletes at once,
escaped snippets, newest order and paging, bad parameters."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from api_support import POST, check_error, posted
from support.api import Api, new_thread, unique


def word() -> str:
    """A word no other test uses: letters only, so the parser keeps it whole."""
    return "zq" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


def find(url: str, q: str, **params: str) -> list[dict]:
    r = httpx.get(url + "/api/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def ids(results: list[dict]) -> list[int]:
    return [r["post"]["id"] for r in results]


@pytest.fixture(scope="module")
def people(server):
    return Api(server.url).sign_up(), Api(server.url).sign_up()


def test_result_shape_and_stemming(server, forum, people):
    """A result is {post, thread: {id, title, category}, snippet}; "boil kettle" finds "boiling kettles"."""
    alice, bob = people
    w = word()
    created = new_thread(alice, forum["category"], title="About water", body=f"The kettles were boiling {w}")
    results = find(server.url, f"boil kettle {w}")
    assert ids(results) == [created["question"]["id"]]
    result = results[0]
    assert set(result) == {"post", "thread", "snippet"} and set(result["post"]) == POST
    assert result["thread"] == {"id": created["thread"]["id"], "title": "About water",
                                "category": created["thread"]["category"]}
    assert "<mark>boiling</mark>" in result["snippet"] and "<mark>kettles</mark>" in result["snippet"]


def test_phrase_exclusion_and_or(server, forum, people):
    """"a phrase" needs the words in order, -word excludes, `or` takes either."""
    alice, bob = people
    w, other = word(), word()
    tid = new_thread(alice, forum["category"], body=f"{w} red green")["thread"]["id"]
    a = httpx.get(f"{server.url}/api/threads/{tid}").json()["question"]["id"]
    b = posted(bob, tid, f"{w} green red")["id"]
    c = posted(bob, tid, f"{w} blue")["id"]
    d = posted(bob, tid, f"{other} blue")["id"]
    assert ids(find(server.url, f'"red green" {w}')) == [a]
    assert sorted(ids(find(server.url, f"{w} -green"))) == [c]
    assert sorted(ids(find(server.url, f"{w} or {other}"))) == sorted([a, b, c, d])
    assert sorted(ids(find(server.url, f"{w} green"))) == sorted([a, b])


def test_a_match_in_the_title_ranks_above_one_in_a_body(server, forum, people):
    """The question whose title holds the word comes before a response that only mentions it."""
    alice, bob = people
    w = word()
    in_body = posted(bob, new_thread(alice, forum["category"], title="Something else")["thread"]["id"],
                     f"a long answer that mentions {w} once among many other words")
    in_title = new_thread(alice, forum["category"], title=f"Why {w}", body="no mention here")
    assert ids(find(server.url, w)) == [in_title["question"]["id"], in_body["id"]]


def test_category_includes_descendants_and_author_filters(server, forum, people):
    """category=SLUG finds its subtree only; author=NAME only that user's posts; unknown ones find nothing."""
    alice, bob = people
    mod = forum["mod"]
    root, child, other = unique("sr-"), unique("sc-"), unique("so-")
    assert mod.post("/api/categories", json={"slug": root, "name": "R"}).status_code == 201
    assert mod.post("/api/categories", json={"slug": child, "name": "C", "parent": root}).status_code == 201
    assert mod.post("/api/categories", json={"slug": other, "name": "O"}).status_code == 201
    w = word()
    q_root = new_thread(alice, root, body=w)
    q_child = new_thread(alice, child, body=w)
    new_thread(alice, other, body=w)
    by_bob = posted(bob, q_root["thread"]["id"], w)
    assert sorted(ids(find(server.url, w, category=root))) == sorted(
        [q_root["question"]["id"], q_child["question"]["id"], by_bob["id"]])
    assert ids(find(server.url, w, category=child)) == [q_child["question"]["id"]]
    assert ids(find(server.url, w, author=bob.user["username"].upper())) == [by_bob["id"]]
    assert ids(find(server.url, w, category=root, author=bob.user["username"])) == [by_bob["id"]]
    assert find(server.url, w, category=unique("none-")) == []
    assert find(server.url, w, author=unique("nobody")) == []


def test_edits_renames_and_deletes_show_at_once(server, forum, people):
    """After an edit the old word no longer finds the post and the new one does; a rename re-indexes the
    title; a deleted post, and every post of a deleted thread, never appear."""
    alice, bob = people
    old, new, title_word, gone = word(), word(), word(), word()
    created = new_thread(alice, forum["category"], title="Plain title", body=f"{gone} question")
    tid = created["thread"]["id"]
    answer = posted(bob, tid, f"first {old}")
    assert ids(find(server.url, old)) == [answer["id"]]
    assert bob.patch(f"/api/posts/{answer['id']}", json={"body": f"second {new}"}).status_code == 200
    assert find(server.url, old) == [] and ids(find(server.url, new)) == [answer["id"]]
    assert alice.patch(f"/api/threads/{tid}", json={"title": f"Better {title_word}"}).status_code == 200
    assert ids(find(server.url, title_word)) == [created["question"]["id"]]
    assert bob.delete(f"/api/posts/{answer['id']}").status_code == 204
    assert find(server.url, new) == []
    assert ids(find(server.url, gone)) == [created["question"]["id"]]
    assert forum["mod"].delete(f"/api/posts/{created['question']['id']}").status_code == 204
    assert find(server.url, gone) == [] and find(server.url, title_word) == []


def test_snippet_escapes_everything_but_the_marks(server, forum, people):
    """Hostile text in a body comes back as escaped text in the snippet; only our <mark> tags are markup."""
    alice, bob = people
    w = word()
    body = f'{w} <script>alert(1)</script> <mark>fake</mark> <img src=x onerror="a()"> & "quoted" \'single\''
    new_thread(alice, forum["category"], body=body)
    snippet = find(server.url, w)[0]["snippet"]
    assert f"<mark>{w}</mark>" in snippet
    assert "&lt;script&gt;" in snippet and "&lt;mark&gt;fake&lt;/mark&gt;" in snippet
    bare = snippet.replace(f"<mark>{w}</mark>", "")
    assert "<" not in bare and ">" not in bare and '"' not in bare, snippet
    assert re.search(r"&amp;|&quot;|&#x27;", bare), snippet


def test_newest_order_and_keyset_paging(server, forum, people):
    """sort=newest lists newest first; both orders page with `before` and never repeat a result."""
    alice, bob = people
    w = word()
    tid = new_thread(alice, forum["category"], body=f"{w} {w} {w}")["thread"]["id"]
    made = [httpx.get(f"{server.url}/api/threads/{tid}").json()["question"]["id"]]
    made += [posted(bob, tid, f"{w} reply {i}")["id"] for i in range(4)]
    for sort, expected in (("newest", made[::-1]), ("relevance", None)):
        seen, before = [], None
        while True:
            r = httpx.get(server.url + "/api/search",
                          params={"q": w, "sort": sort, "limit": 2, **({"before": before} if before else {})})
            assert r.status_code == 200, r.text
            seen += ids(r.json()["results"])
            before = r.json()["next"]
            if before is None:
                break
        assert len(seen) == len(set(seen)) == 5
        if expected:
            assert seen == expected
        else:
            assert seen[0] == made[0]  # the question holds the word three times
    nxt = httpx.get(server.url + "/api/search", params={"q": w, "limit": 1}).json()["next"]
    check_error(httpx.get(server.url + "/api/search", params={"q": w, "sort": "newest", "before": nxt}), 404,
                field="before")


def test_bad_parameters_are_400(server):
    """No q, a blank or too long q, an unknown sort, a bad limit or a malformed cursor: 400 naming the parameter
    (a cursor-shaped string that is no position of the list: 404)."""
    url = server.url + "/api/search"
    check_error(httpx.get(url), 400, field="q")
    check_error(httpx.get(url, params={"q": "   "}), 400, field="q")
    check_error(httpx.get(url, params={"q": "a" * 201}), 400, field="q")
    check_error(httpx.get(url, params={"q": "tea", "sort": "loud"}), 400, field="sort")
    check_error(httpx.get(url, params={"q": "tea", "limit": "0"}), 400, field="limit")
    check_error(httpx.get(url, params={"q": "tea", "before": "garbage!"}), 400, field="before")
    check_error(httpx.get(url, params={"q": "tea", "before": "garbage"}), 404, field="before")  # cursor-shaped
    # Syntax the parser shrugs at is not an error.
    for q in ('"unclosed', "-", "or or", "!!! & | :*", "the"):
        assert httpx.get(url, params={"q": q}).status_code == 200, q
