"""Categories, threads, posts, edits, revisions, deletes, votes and the event log: success paths and shapes."""

from __future__ import annotations

import time

import pytest

from api_support import CATEGORY, TIME, check_error, check_post, check_thread, check_user_brief, posted, reply
from support import http
from support.api import Api, new_thread, unique

# -- categories ----------------------------------------------------------------


def _find(categories, slug):
    for c in categories:
        if c["slug"] == slug:
            return c
        found = _find(c["children"], slug)
        if found:
            return found
    return None


def _check_category(cat):
    assert set(cat) == CATEGORY, cat
    for child in cat["children"]:
        assert child["parent"] == cat["slug"] and child["path"][:-1] == cat["path"]
        _check_category(child)


def test_category_tree_three_levels_with_paths(forum):
    """POST /api/categories builds a tree; GET lists roots with children nested and paths from the root."""
    mod = forum["mod"]
    root, mid, leaf = unique("root-"), unique("mid-"), unique("leaf-")
    r = mod.post("/api/categories", json={"slug": root, "name": "Discussion"})
    assert r.status_code == 201, r.text
    assert r.json() == {"category": {"id": r.json()["category"]["id"], "slug": root, "name": "Discussion",
                                     "parent": None, "path": [{"slug": root, "name": "Discussion"}],
                                     "children": []}}
    assert mod.post("/api/categories", json={"slug": mid, "name": "Questions", "parent": root}).status_code == 201
    r = mod.post("/api/categories", json={"slug": leaf, "name": "  Current Events and News ", "parent": mid})
    assert r.status_code == 201
    cat = r.json()["category"]
    assert cat["parent"] == mid and cat["name"] == "Current Events and News"
    assert cat["path"] == [{"slug": root, "name": "Discussion"}, {"slug": mid, "name": "Questions"},
                           {"slug": leaf, "name": "Current Events and News"}]
    tree = http.get(forum["url"] + "/api/categories").json()["categories"]
    assert all(c["parent"] is None for c in tree)
    node = _find(tree, root)
    assert node is not None and [c["slug"] for c in node["children"]] == [mid]
    assert [c["slug"] for c in node["children"][0]["children"]] == [leaf]
    for c in tree:
        _check_category(c)


@pytest.mark.parametrize("body, status, code, field", [
    ({"slug": "Upper", "name": "x"}, 422, "invalid", "slug"),
    ({"slug": "-dash", "name": "x"}, 422, "invalid", "slug"),
    ({"slug": "has space", "name": "x"}, 422, "invalid", "slug"),
    ({"slug": "s" * 65, "name": "x"}, 422, "invalid", "slug"),
    ({"slug": "fine-slug-{u}", "name": "  "}, 422, "invalid", "name"),
    ({"slug": "fine-slug-{u}", "name": "x", "parent": "no-such-parent"}, 404, "not_found", "parent"),
    ({"name": "x"}, 422, "invalid", "slug"),
])
def test_category_validation(forum, body, status, code, field):
    """A bad slug or empty name → 422, an unknown parent → 404, naming the field."""
    body = {k: v.format(u=unique()) if isinstance(v, str) else v for k, v in body.items()}
    check_error(forum["mod"].post("/api/categories", json=body), status, code, field)


def test_category_slug_taken_is_409(forum):
    """Creating a category whose slug exists → 409 slug_taken."""
    check_error(forum["mod"].post("/api/categories", json={"slug": forum["category"], "name": "Again"}),
                409, "slug_taken", "slug")


# -- threads -------------------------------------------------------------------


def test_create_thread_answers_thread_and_question(forum):
    """POST /api/threads → 201 {thread, question}; titles and bodies are stored trimmed; the question is seq 1."""
    api = Api(forum["url"]).sign_up()
    r = api.post("/api/threads", json={"category": forum["category"], "title": "  Why is the sky blue?  ",
                                       "body": "\n\n  Rayleigh **scattering**?  \n"})
    assert r.status_code == 201, r.text
    data = r.json()
    assert set(data) == {"thread", "question"}
    thread, question = data["thread"], data["question"]
    check_thread(thread)
    check_post(question)
    assert thread["title"] == "Why is the sky blue?"
    assert thread["category"]["slug"] == forum["category"]
    assert thread["author"] == {k: api.user[k] for k in ("id", "username", "display_name", "avatar_url")}
    assert thread["response_count"] == 0 and thread["locked"] is False and thread["seq"] == 1
    assert thread["last_activity_at"] >= thread["created_at"]
    assert question["kind"] == "question" and question["parent_id"] is None
    assert question["thread_id"] == thread["id"] and question["body"] == "Rayleigh **scattering**?"
    assert "<strong>scattering</strong>" in question["html"]
    assert question["revision"] == 1 and question["edited_at"] is None and question["edited_by"] is None
    assert question["score"] == 0 and question["my_vote"] == 0 and question["deleted"] is False
    assert question["author"] == {k: api.user[k] for k in ("id", "username", "display_name", "avatar_url")}


def test_create_thread_in_an_unknown_category_is_404(forum):
    """An unknown category → 404 naming the field."""
    api = Api(forum["url"]).sign_up()
    check_error(api.post("/api/threads", json={"category": "no-such-category-x", "title": "t", "body": "b"}), 404,
                "not_found", "category")


@pytest.mark.parametrize("body, field", [
    ({"category": "{cat}", "title": "   ", "body": "b"}, "title"),
    ({"category": "{cat}", "title": "t" * 201, "body": "b"}, "title"),
    ({"category": "{cat}", "title": "t", "body": " \n\t "}, "body"),
    ({"category": "{cat}", "title": "t", "body": "b" * 20_001}, "body"),
])
def test_create_thread_validation(forum, body, field):
    """An empty or over-long title or body → 422 naming the field."""
    api = Api(forum["url"]).sign_up()
    body = {k: v.replace("{cat}", forum["category"]) for k, v in body.items()}
    check_error(api.post("/api/threads", json=body), 422, "invalid", field)


def test_title_of_200_characters_after_trimming_is_accepted(forum):
    """A 200-character title with surrounding spaces is accepted and stored trimmed."""
    thread = new_thread(forum["mod"], forum["category"], title="  " + "t" * 200 + "  ")
    assert thread["thread"]["title"] == "t" * 200


def test_create_thread_as_guest_is_401(forum):
    """POST /api/threads without a session → 401."""
    check_error(http.post(forum["url"] + "/api/threads",
                           json={"category": forum["category"], "title": "t", "body": "b"}), 401)


@pytest.fixture(scope="module")
def paged_category(forum):
    """A fresh category (under a fresh parent) holding 5 threads, created oldest first."""
    parent, slug = unique("pp-"), unique("pc-")
    assert forum["mod"].post("/api/categories", json={"slug": parent, "name": "Parent"}).status_code == 201
    assert forum["mod"].post("/api/categories", json={"slug": slug, "name": "Paged", "parent": parent}
                             ).status_code == 201
    ids = [new_thread(forum["mod"], slug, title=f"paged {i}")["thread"]["id"] for i in range(5)]
    return {"slug": slug, "parent": parent, "ids": ids}


def test_category_threads_newest_activity_first_with_cursor_paging(forum, paged_category):
    """GET /api/categories/{slug}/threads pages by `next` → `before` with no duplicate or gap; last next is null."""
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"before": cursor} if cursor else {})}
        r = http.get(f"{forum['url']}/api/categories/{paged_category['slug']}/threads", params=params)
        assert r.status_code == 200, r.text
        data = r.json()
        assert set(data) == {"threads", "next"}
        for t in data["threads"]:
            check_thread(t)
        seen += [t["id"] for t in data["threads"]]
        pages += 1
        cursor = data["next"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and len(data["threads"]) == 2
    assert pages == 3
    assert seen == paged_category["ids"][::-1]


def test_a_reply_moves_its_thread_to_the_top(forum, paged_category):
    """Replying to the oldest thread bumps it to the front of the listing (newest activity first)."""
    oldest = paged_category["ids"][0]
    before = http.get(f"{forum['url']}/api/threads/{oldest}").json()["thread"]["last_activity_at"]
    posted(forum["mod"], oldest, "bump")
    r = http.get(f"{forum['url']}/api/categories/{paged_category['slug']}/threads", params={"limit": 1})
    assert r.json()["threads"][0]["id"] == oldest
    thread = r.json()["threads"][0]
    assert thread["last_activity_at"] > before and thread["response_count"] == 1
    times = [t["last_activity_at"] for t in http.get(f"{forum['url']}/api/threads?limit=100").json()["threads"]]
    assert times == sorted(times, reverse=True)


def test_parent_category_lists_threads_of_its_descendants(forum, paged_category):
    """A category's listing includes threads in its sub-categories."""
    r = http.get(f"{forum['url']}/api/categories/{paged_category['parent']}/threads", params={"limit": 100})
    assert {t["id"] for t in r.json()["threads"]} == set(paged_category["ids"])


def test_all_threads_listing_pages_across_categories(forum, paged_category):
    """GET /api/threads pages across categories; the default limit is 20 and `next` is null at the end."""
    r = http.get(f"{forum['url']}/api/threads")
    data = r.json()
    assert r.status_code == 200 and len(data["threads"]) <= 20
    seen, cursor = [], None
    while True:
        data = http.get(f"{forum['url']}/api/threads", params={"limit": 3, **({"before": cursor} if cursor else {})}
                         ).json()
        seen += [t["id"] for t in data["threads"]]
        cursor = data["next"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert set(paged_category["ids"]) <= set(seen)


def test_empty_category_lists_nothing(forum):
    """A category without threads → {threads: [], next: null}."""
    slug = unique("empty-")
    assert forum["mod"].post("/api/categories", json={"slug": slug, "name": "Empty"}).status_code == 201
    assert http.get(f"{forum['url']}/api/categories/{slug}/threads").json() == {"threads": [], "next": None}


# -- the thread page -----------------------------------------------------------


@pytest.fixture(scope="module")
def busy(forum):
    """A thread with 5 responses (each with comments on the first two) and votes giving distinct scores."""
    author = Api(forum["url"]).sign_up()
    voters = [Api(forum["url"]).sign_up() for _ in range(3)]
    thread = new_thread(author, forum["category"], title="Busy thread")
    tid = thread["thread"]["id"]
    responses = [posted(author, tid, f"response {i}") for i in range(5)]
    comments = [posted(voters[0], tid, f"comment {i}", parent_id=responses[i % 2]["id"]) for i in range(3)]
    # scores: r0 = 0, r1 = 3, r2 = -1, r3 = 1, r4 = 3
    votes = {1: [1, 1, 1], 2: [-1], 3: [1], 4: [1, 1, 1]}
    for idx, values in votes.items():
        for voter, value in zip(voters, values, strict=False):
            assert voter.put(f"/api/posts/{responses[idx]['id']}/vote", json={"value": value}).status_code == 200
    return {"author": author, "voters": voters, "thread": tid, "question": thread["question"]["id"],
            "responses": [r["id"] for r in responses], "comments": [c["id"] for c in comments]}


def test_thread_page_shape_with_comments_nested(forum, busy):
    """GET /api/threads/{id} → {thread, question, responses: [Post + comments], next}, oldest first by default."""
    r = http.get(f"{forum['url']}/api/threads/{busy['thread']}")
    assert r.status_code == 200, r.text
    page = r.json()
    assert set(page) == {"thread", "question", "responses", "next"}
    check_thread(page["thread"])
    check_post(page["question"])
    assert page["next"] is None
    assert [p["id"] for p in page["responses"]] == busy["responses"]
    for p in page["responses"]:
        check_post(p, comments=True)
        assert p["kind"] == "response" and p["parent_id"] == busy["question"]
        for c in p["comments"]:
            check_post(c)
            assert c["kind"] == "comment" and c["parent_id"] == p["id"]
    assert [c["id"] for c in page["responses"][0]["comments"]] == [busy["comments"][0], busy["comments"][2]]
    assert [c["id"] for c in page["responses"][1]["comments"]] == [busy["comments"][1]]
    assert page["responses"][2]["comments"] == []
    assert page["thread"]["response_count"] == 5
    assert page["thread"]["seq"] == 1 + 5 + 3 + 8  # question, responses, comments, votes


def test_thread_page_paging_oldest(forum, busy):
    """limit + after page through the responses oldest first, without gap or duplicate."""
    ids, cursor = [], None
    while True:
        params = {"limit": 2, **({"after": cursor} if cursor else {})}
        page = http.get(f"{forum['url']}/api/threads/{busy['thread']}", params=params).json()
        assert page["question"]["id"] == busy["question"]
        ids += [p["id"] for p in page["responses"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert ids == busy["responses"]


def test_thread_page_sort_newest(forum, busy):
    """sort=newest lists responses newest first, and pages the same way."""
    ids, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "newest", **({"after": cursor} if cursor else {})}
        page = http.get(f"{forum['url']}/api/threads/{busy['thread']}", params=params).json()
        ids += [p["id"] for p in page["responses"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert ids == busy["responses"][::-1]


def test_thread_page_sort_top(forum, busy):
    """sort=top lists responses by score, highest first, ties oldest first; paging keeps that order."""
    r = busy["responses"]
    expected = [r[1], r[4], r[3], r[0], r[2]]
    page = http.get(f"{forum['url']}/api/threads/{busy['thread']}", params={"sort": "top"}).json()
    assert [p["id"] for p in page["responses"]] == expected
    assert [p["score"] for p in page["responses"]] == [3, 3, 1, 0, -1]
    ids, cursor = [], None
    while True:
        params = {"limit": 2, "sort": "top", **({"after": cursor} if cursor else {})}
        page = http.get(f"{forum['url']}/api/threads/{busy['thread']}", params=params).json()
        ids += [p["id"] for p in page["responses"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert ids == expected


def test_my_vote_is_per_reader(forum, busy):
    """my_vote shows the signed-in reader's own vote, and 0 for guests and for someone who did not vote."""
    url = f"/api/threads/{busy['thread']}"
    mine = {p["id"]: p["my_vote"] for p in busy["voters"][0].get(url).json()["responses"]}
    assert mine[busy["responses"][1]] == 1 and mine[busy["responses"][2]] == -1 and mine[busy["responses"][0]] == 0
    guest = http.get(forum["url"] + url).json()
    assert all(p["my_vote"] == 0 for p in guest["responses"])
    other = busy["voters"][2].get(url).json()
    assert {p["id"]: p["my_vote"] for p in other["responses"]}[busy["responses"][1]] == 1
    assert {p["id"]: p["my_vote"] for p in other["responses"]}[busy["responses"][2]] == 0


# -- posting -------------------------------------------------------------------


def test_reply_and_comment(forum):
    """A post without parent_id is a response to the question; with a response's id it is a comment."""
    api = Api(forum["url"]).sign_up()
    thread = new_thread(forum["mod"], forum["category"])
    tid, qid = thread["thread"]["id"], thread["question"]["id"]
    r = reply(api, tid, "  a *response*  ")
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"post"}
    resp = r.json()["post"]
    check_post(resp)
    assert resp["kind"] == "response" and resp["parent_id"] == qid and resp["thread_id"] == tid
    assert resp["body"] == "a *response*" and "<em>response</em>" in resp["html"]
    comment = posted(api, tid, "a comment", parent_id=resp["id"])
    assert comment["kind"] == "comment" and comment["parent_id"] == resp["id"]
    page = http.get(f"{forum['url']}/api/threads/{tid}").json()
    assert page["thread"]["response_count"] == 1 and page["thread"]["seq"] == 3
    assert page["responses"][0]["comments"][0]["id"] == comment["id"]


def test_comment_on_a_comment_is_422(forum):
    """parent_id naming a comment → 422 field parent_id (comments do not nest)."""
    thread = new_thread(forum["mod"], forum["category"])
    tid = thread["thread"]["id"]
    resp = posted(forum["mod"], tid)
    comment = posted(forum["mod"], tid, "c", parent_id=resp["id"])
    check_error(reply(forum["mod"], tid, "nested", parent_id=comment["id"]), 422, "invalid", "parent_id")
    check_error(reply(forum["mod"], tid, "on question", parent_id=thread["question"]["id"]), 422, "invalid",
                "parent_id")


def test_parent_from_another_thread_is_404(forum):
    """parent_id naming a post of another thread (or no post) → 404 field parent_id: no such post here."""
    a = new_thread(forum["mod"], forum["category"])
    b = new_thread(forum["mod"], forum["category"])
    resp = posted(forum["mod"], a["thread"]["id"])
    check_error(reply(forum["mod"], b["thread"]["id"], "x", parent_id=resp["id"]), 404, "not_found", "parent_id")
    check_error(reply(forum["mod"], b["thread"]["id"], "x", parent_id=987654321), 404, "not_found", "parent_id")


def test_reply_as_guest_is_401(forum):
    """POST /api/threads/{id}/posts as a guest → 401."""
    thread = new_thread(forum["mod"], forum["category"])
    check_error(http.post(f"{forum['url']}/api/threads/{thread['thread']['id']}/posts", json={"body": "x"}), 401)


def test_locked_thread_refuses_posts_edits_and_votes_conflict(forum):
    """Posting, commenting or editing in a locked thread → 409 thread_locked (moderators may still edit)."""
    user = Api(forum["url"]).sign_up()
    thread = new_thread(user, forum["category"])
    tid = thread["thread"]["id"]
    resp = posted(user, tid)
    r = forum["mod"].patch(f"/api/threads/{tid}", json={"locked": True})
    assert r.status_code == 200 and r.json()["thread"]["locked"] is True
    check_error(reply(user, tid, "late"), 409, "thread_locked")
    check_error(reply(forum["mod"], tid, "late comment", parent_id=resp["id"]), 409, "thread_locked")
    check_error(user.patch(f"/api/posts/{resp['id']}", json={"body": "changed"}), 409, "thread_locked")
    check_error(user.delete(f"/api/posts/{resp['id']}"), 409, "thread_locked")
    assert forum["mod"].patch(f"/api/posts/{resp['id']}", json={"body": "moderated"}).status_code == 200
    r = forum["mod"].patch(f"/api/threads/{tid}", json={"locked": False})
    assert r.json()["thread"]["locked"] is False
    assert reply(user, tid, "open again").status_code == 201


def test_deleted_thread_refuses_posts_with_409(forum):
    """Posting into a thread whose question a moderator deleted → 409; reading it → 404."""
    thread = new_thread(forum["mod"], forum["category"])
    tid = thread["thread"]["id"]
    assert forum["mod"].delete(f"/api/posts/{thread['question']['id']}").status_code == 204
    check_error(reply(forum["mod"], tid, "too late"), 409, "thread_deleted")
    check_error(http.get(f"{forum['url']}/api/threads/{tid}"), 404, "not_found")


# -- editing and revisions -----------------------------------------------------


def test_edit_makes_a_new_revision_and_keeps_the_old(forum):
    """PATCH /api/posts/{id} → 200 {post}, revision+1, edited_at/by set; every revision is listed, oldest first."""
    author = Api(forum["url"]).sign_up()
    thread = new_thread(forum["mod"], forum["category"])
    post = posted(author, thread["thread"]["id"], "first *version*")
    time.sleep(0.01)
    r = author.patch(f"/api/posts/{post['id']}", json={"body": "  second **version**  ", "revision": 1})
    assert r.status_code == 200, r.text
    edited = r.json()["post"]
    check_post(edited)
    assert edited["revision"] == 2 and edited["body"] == "second **version**"
    assert "<strong>version</strong>" in edited["html"]
    assert edited["edited_by"] == {k: author.user[k] for k in ("id", "username", "display_name", "avatar_url")}
    assert edited["edited_at"] > edited["created_at"] and edited["created_at"] == post["created_at"]
    r = forum["mod"].patch(f"/api/posts/{post['id']}", json={"body": "third, by a moderator"})
    assert r.status_code == 200 and r.json()["post"]["revision"] == 3
    assert r.json()["post"]["edited_by"]["id"] == forum["mod"].user["id"]
    assert r.json()["post"]["author"]["id"] == author.user["id"]
    revs = http.get(f"{forum['url']}/api/posts/{post['id']}/revisions").json()
    assert set(revs) == {"revisions"}
    revs = revs["revisions"]
    assert [v["revision"] for v in revs] == [1, 2, 3]
    for v in revs:
        assert set(v) == {"revision", "body", "html", "edited_by", "edited_at"}
        check_user_brief(v["edited_by"])
        assert TIME.match(v["edited_at"])
    assert revs[0]["body"] == "first *version*" and "<em>version</em>" in revs[0]["html"]
    assert revs[0]["edited_by"]["id"] == author.user["id"] and revs[0]["edited_at"] == post["created_at"]
    assert revs[1]["body"] == "second **version**" and revs[1]["edited_at"] == edited["edited_at"]
    assert revs[2]["edited_by"]["id"] == forum["mod"].user["id"]
    assert [v["edited_at"] for v in revs] == sorted(v["edited_at"] for v in revs)


def test_unedited_post_has_one_revision(forum):
    """GET revisions of a never-edited post lists exactly revision 1, by its author at its creation time."""
    thread = new_thread(forum["mod"], forum["category"])
    q = thread["question"]
    revs = http.get(f"{forum['url']}/api/posts/{q['id']}/revisions").json()["revisions"]
    assert revs == [{"revision": 1, "body": q["body"], "html": q["html"], "edited_by": q["author"],
                     "edited_at": q["created_at"]}]


def test_stale_revision_is_409(forum):
    """An edit naming a revision that is no longer current → 409 stale_revision and nothing changes."""
    thread = new_thread(forum["mod"], forum["category"])
    q = thread["question"]
    assert forum["mod"].patch(f"/api/posts/{q['id']}", json={"body": "v2", "revision": 1}).status_code == 200
    check_error(forum["mod"].patch(f"/api/posts/{q['id']}", json={"body": "lost update", "revision": 1}),
                409, "stale_revision")
    check_error(forum["mod"].patch(f"/api/posts/{q['id']}", json={"body": "future", "revision": 7}),
                409, "stale_revision")
    page = http.get(f"{forum['url']}/api/threads/{thread['thread']['id']}").json()
    assert page["question"]["body"] == "v2" and page["question"]["revision"] == 2


def test_edit_validation(forum):
    """An empty or over-long edited body → 422 field body."""
    thread = new_thread(forum["mod"], forum["category"])
    pid = thread["question"]["id"]
    check_error(forum["mod"].patch(f"/api/posts/{pid}", json={"body": "   "}), 422, "invalid", "body")
    check_error(forum["mod"].patch(f"/api/posts/{pid}", json={"body": "x" * 20_001}), 422, "invalid", "body")


# -- deleting --------------------------------------------------------------------


def test_deleted_post_keeps_its_place(forum):
    """DELETE /api/posts/{id} → 204; the post stays in place with deleted true and empty body/html."""
    author = Api(forum["url"]).sign_up()
    thread = new_thread(forum["mod"], forum["category"])
    tid = thread["thread"]["id"]
    first, second, third = (posted(author, tid, f"post {i}") for i in range(3))
    comment = posted(author, tid, "a comment", parent_id=second["id"])
    r = author.delete(f"/api/posts/{second['id']}")
    assert r.status_code == 204 and r.content == b""
    page = http.get(f"{forum['url']}/api/threads/{tid}").json()
    assert [p["id"] for p in page["responses"]] == [first["id"], second["id"], third["id"]]
    gone = page["responses"][1]
    check_post(gone, comments=True)
    assert gone["deleted"] is True and gone["body"] == "" and gone["html"] == ""
    assert gone["author"]["id"] == author.user["id"]
    assert [c["id"] for c in gone["comments"]] == [comment["id"]]
    assert page["thread"]["response_count"] == 2
    assert author.delete(f"/api/posts/{second['id']}").status_code == 204  # deleting twice is fine
    check_error(author.patch(f"/api/posts/{second['id']}", json={"body": "revive"}), 409, "post_deleted")
    check_error(forum["mod"].put(f"/api/posts/{second['id']}/vote", json={"value": 1}), 409, "post_deleted")
    check_error(reply(author, tid, "comment on deleted", parent_id=second["id"]), 409, "post_deleted")
    # its history is not served either: the text is gone
    assert http.get(f"{forum['url']}/api/posts/{second['id']}/revisions").json() == {"revisions": []}


def test_deleting_a_comment_keeps_response_count(forum):
    """Deleting a comment does not change response_count (comments are not responses)."""
    thread = new_thread(forum["mod"], forum["category"])
    tid = thread["thread"]["id"]
    resp = posted(forum["mod"], tid)
    comment = posted(forum["mod"], tid, "c", parent_id=resp["id"])
    assert forum["mod"].delete(f"/api/posts/{comment['id']}").status_code == 204
    page = http.get(f"{forum['url']}/api/threads/{tid}").json()
    assert page["thread"]["response_count"] == 1
    assert page["responses"][0]["comments"][0]["deleted"] is True


def test_moderator_deleting_the_question_deletes_the_thread(forum, paged_category):
    """A moderator deleting the question → 204; the thread is 404 and gone from listings, its posts too."""
    thread = new_thread(forum["mod"], paged_category["slug"])
    tid = thread["thread"]["id"]
    resp = posted(forum["mod"], tid)
    assert forum["mod"].delete(f"/api/posts/{thread['question']['id']}").status_code == 204
    check_error(http.get(f"{forum['url']}/api/threads/{tid}"), 404)
    check_error(http.get(f"{forum['url']}/api/threads/{tid}/events"), 404)
    check_error(http.get(f"{forum['url']}/api/posts/{resp['id']}/revisions"), 404)
    check_error(forum["mod"].patch(f"/api/threads/{tid}", json={"title": "x"}), 404)
    check_error(forum["mod"].patch(f"/api/posts/{resp['id']}", json={"body": "x"}), 404)
    listed = http.get(f"{forum['url']}/api/categories/{paged_category['slug']}/threads?limit=100").json()
    assert tid not in {t["id"] for t in listed["threads"]}


# -- votes -----------------------------------------------------------------------


def test_vote_up_down_and_clear(forum):
    """PUT vote → 200 {post_id, score, my_vote}; changing a vote moves the score by the difference; 0 clears it."""
    thread = new_thread(forum["mod"], forum["category"])
    pid = thread["question"]["id"]
    a, b = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    url = f"/api/posts/{pid}/vote"
    assert a.put(url, json={"value": 1}).json() == {"post_id": pid, "score": 1, "my_vote": 1}
    assert a.put(url, json={"value": 1}).json() == {"post_id": pid, "score": 1, "my_vote": 1}  # same vote again
    assert b.put(url, json={"value": 1}).json() == {"post_id": pid, "score": 2, "my_vote": 1}
    assert a.put(url, json={"value": -1}).json() == {"post_id": pid, "score": 0, "my_vote": -1}
    assert a.put(url, json={"value": 0}).json() == {"post_id": pid, "score": 1, "my_vote": 0}
    assert a.put(url, json={"value": 0}).json() == {"post_id": pid, "score": 1, "my_vote": 0}
    page = b.get(f"/api/threads/{thread['thread']['id']}").json()
    assert page["question"]["score"] == 1 and page["question"]["my_vote"] == 1


def test_no_self_votes(forum):
    """Voting on your own post → 403 and the score stays."""
    thread = new_thread(forum["mod"], forum["category"])
    pid = thread["question"]["id"]
    check_error(forum["mod"].put(f"/api/posts/{pid}/vote", json={"value": 1}), 403)
    assert http.get(f"{forum['url']}/api/threads/{thread['thread']['id']}").json()["question"]["score"] == 0


def test_vote_as_guest_is_401(forum):
    """PUT vote without a session → 401."""
    thread = new_thread(forum["mod"], forum["category"])
    check_error(http.put(f"{forum['url']}/api/posts/{thread['question']['id']}/vote", json={"value": 1}), 401)


# -- renaming, locking, moving ---------------------------------------------------


def test_patch_thread_rename_lock_move(forum, paged_category):
    """PATCH /api/threads/{id}: the author renames (trimmed); a moderator locks and moves; each answers {thread}."""
    author = Api(forum["url"]).sign_up()
    thread = new_thread(author, forum["category"], title="Old title")
    tid = thread["thread"]["id"]
    r = author.patch(f"/api/threads/{tid}", json={"title": "  New title  "})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"thread"}
    check_thread(r.json()["thread"])
    assert r.json()["thread"]["title"] == "New title" and r.json()["thread"]["seq"] == 2
    r = forum["mod"].patch(f"/api/threads/{tid}", json={"category": paged_category["slug"], "locked": True})
    assert r.status_code == 200, r.text
    t = r.json()["thread"]
    assert t["locked"] is True and t["category"]["slug"] == paged_category["slug"]
    assert [p["slug"] for p in t["category"]["path"]] == [paged_category["parent"], paged_category["slug"]]
    assert t["seq"] == 3 and t["title"] == "New title"
    page = http.get(f"{forum['url']}/api/threads/{tid}").json()
    assert page["thread"] == t
    listed = http.get(f"{forum['url']}/api/categories/{forum['category']}/threads?limit=100").json()
    assert tid not in {x["id"] for x in listed["threads"]}
    r = forum["mod"].patch(f"/api/threads/{tid}", json={"title": "Moderator title"})
    assert r.status_code == 200 and r.json()["thread"]["title"] == "Moderator title"


def test_patch_thread_validation(forum):
    """A blank or over-long title → 422, an unknown category → 404, naming the field; an empty patch changes
    nothing."""
    thread = new_thread(forum["mod"], forum["category"])
    tid = thread["thread"]["id"]
    check_error(forum["mod"].patch(f"/api/threads/{tid}", json={"title": "  "}), 422, "invalid", "title")
    check_error(forum["mod"].patch(f"/api/threads/{tid}", json={"title": "t" * 201}), 422, "invalid", "title")
    check_error(forum["mod"].patch(f"/api/threads/{tid}", json={"category": "no-such-cat"}), 404, "not_found",
                "category")
    r = forum["mod"].patch(f"/api/threads/{tid}", json={})
    assert r.status_code == 200 and r.json()["thread"]["seq"] == 1


# -- events ------------------------------------------------------------------------


def test_events_since_lists_every_change_in_order(forum):
    """GET /api/threads/{id}/events?since= lists later events oldest first: type/thread/seq/name/data/created_at."""
    author, voter = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    thread = new_thread(author, forum["category"])
    tid = thread["thread"]["id"]
    resp = posted(author, tid, "resp")
    assert voter.put(f"/api/posts/{resp['id']}/vote", json={"value": 1}).status_code == 200
    assert author.patch(f"/api/posts/{resp['id']}", json={"body": "edited"}).status_code == 200
    assert author.patch(f"/api/threads/{tid}", json={"title": "renamed"}).status_code == 200
    assert author.delete(f"/api/posts/{resp['id']}").status_code == 204
    r = http.get(f"{forum['url']}/api/threads/{tid}/events", params={"since": 0})
    assert r.status_code == 200
    data = r.json()
    assert set(data) == {"events", "seq"} and data["seq"] == 6
    evs = data["events"]
    assert [e["seq"] for e in evs] == [1, 2, 3, 4, 5, 6]
    assert [e["name"] for e in evs] == ["post.created", "post.created", "vote.changed", "post.edited",
                                        "thread.updated", "post.deleted"]
    for e in evs:
        assert set(e) == {"type", "thread", "seq", "name", "data", "created_at"}
        assert e["type"] == "event" and e["thread"] == tid and TIME.match(e["created_at"])
    check_post(evs[0]["data"])
    assert evs[0]["data"]["id"] == thread["question"]["id"]
    assert evs[1]["data"]["id"] == resp["id"] and evs[1]["data"]["my_vote"] == 0
    assert evs[2]["data"] == {"post_id": resp["id"], "score": 1}
    # The response was deleted at the end: its text is gone from the stored events too (issue 13).
    assert evs[1]["data"]["body"] == evs[1]["data"]["html"] == ""
    assert evs[3]["data"]["body"] == evs[3]["data"]["html"] == "" and evs[3]["data"]["revision"] == 2
    assert evs[3]["data"]["my_vote"] == 0
    check_thread(evs[4]["data"])
    assert evs[4]["data"]["title"] == "renamed" and evs[4]["data"]["seq"] == 5
    assert evs[5]["data"] == {"id": resp["id"]}
    later = http.get(f"{forum['url']}/api/threads/{tid}/events", params={"since": 4}).json()
    assert [e["seq"] for e in later["events"]] == [5, 6] and later["seq"] == 6
    assert http.get(f"{forum['url']}/api/threads/{tid}/events?since=6").json() == {"events": [], "seq": 6}
    limited = http.get(f"{forum['url']}/api/threads/{tid}/events", params={"since": 1, "limit": 2}).json()
    assert [e["seq"] for e in limited["events"]] == [2, 3] and limited["seq"] == 6
    default = http.get(f"{forum['url']}/api/threads/{tid}/events").json()
    assert [e["seq"] for e in default["events"]] == [1, 2, 3, 4, 5, 6]


def test_thread_seq_matches_the_last_event(forum):
    """The Thread's seq on the page equals the seq of its last stored event."""
    thread = new_thread(forum["mod"], forum["category"])
    tid = thread["thread"]["id"]
    for i in range(3):
        posted(forum["mod"], tid, f"r{i}")
    page = http.get(f"{forum['url']}/api/threads/{tid}").json()
    evs = http.get(f"{forum['url']}/api/threads/{tid}/events").json()
    assert page["thread"]["seq"] == evs["seq"] == evs["events"][-1]["seq"] == 4
