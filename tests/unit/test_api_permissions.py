"""Who may do what: guest / author / other user / moderator × every action that changes something."""

from __future__ import annotations

import httpx
import pytest

from api_support import check_error, posted
from support import http
from support.api import Api, new_thread, unique

ACTORS = ["guest", "author", "other", "moderator"]


@pytest.fixture(scope="module")
def people(forum):
    return {"guest": http.Client(base_url=forum["url"], timeout=30), "author": Api(forum["url"]).sign_up(),
            "other": Api(forum["url"]).sign_up(), "moderator": forum["mod"]}


@pytest.fixture()
def scene(forum, people):
    """A fresh thread by `author` with one response by `author`."""
    thread = new_thread(people["author"], forum["category"])
    tid = thread["thread"]["id"]
    resp = posted(people["author"], tid, "the author's response")
    return {"thread": tid, "question": thread["question"]["id"], "response": resp["id"]}


def matrix(*statuses: int) -> list[tuple[str, int]]:
    return list(zip(ACTORS, statuses, strict=True))


def _expect(r: httpx.Response, status: int) -> None:
    if status >= 400:
        check_error(r, status)
    else:
        assert r.status_code == status, r.text


@pytest.mark.parametrize("actor, status", matrix(401, 200, 403, 200))
def test_edit_post(forum, people, scene, actor, status):
    """Editing a post: the author or a moderator (200); another user 403; a guest 401."""
    r = people[actor].patch(f"/api/posts/{scene['response']}", json={"body": f"edited by {actor}"})
    _expect(r, status)
    body = http.get(f"{forum['url']}/api/threads/{scene['thread']}").json()["responses"][0]["body"]
    assert body == (f"edited by {actor}" if status == 200 else "the author's response")


@pytest.mark.parametrize("actor, status", matrix(401, 204, 403, 204))
def test_delete_response(forum, people, scene, actor, status):
    """Deleting a response: the author or a moderator (204); another user 403; a guest 401."""
    _expect(people[actor].delete(f"/api/posts/{scene['response']}"), status)
    deleted = http.get(f"{forum['url']}/api/threads/{scene['thread']}").json()["responses"][0]["deleted"]
    assert deleted is (status == 204)


@pytest.mark.parametrize("actor, status", matrix(401, 403, 403, 204))
def test_delete_question(forum, people, scene, actor, status):
    """Deleting a question (the whole thread) is for moderators only; afterwards the thread is 404."""
    _expect(people[actor].delete(f"/api/posts/{scene['question']}"), status)
    r = http.get(f"{forum['url']}/api/threads/{scene['thread']}")
    if status == 204:
        check_error(r, 404, "not_found")
    else:
        assert r.status_code == 200 and r.json()["question"]["deleted"] is False


@pytest.mark.parametrize("actor, status", matrix(401, 403, 200, 200))
def test_vote(forum, people, scene, actor, status):
    """Voting on the author's post: anyone signed in but the author (no self-votes); a guest 401."""
    _expect(people[actor].put(f"/api/posts/{scene['response']}/vote", json={"value": 1}), status)
    score = http.get(f"{forum['url']}/api/threads/{scene['thread']}").json()["responses"][0]["score"]
    assert score == (1 if status == 200 else 0)


@pytest.mark.parametrize("actor, status", matrix(401, 403, 403, 201))
def test_create_category(forum, people, actor, status):
    """Creating a category is for moderators only."""
    slug = unique("perm-")
    _expect(people[actor].post("/api/categories", json={"slug": slug, "name": "Perm"}), status)
    slugs = [c["slug"] for c in http.get(f"{forum['url']}/api/categories").json()["categories"]]
    assert (slug in slugs) is (status == 201)


@pytest.mark.parametrize("actor, status", matrix(401, 403, 403, 200))
def test_lock_thread(forum, people, scene, actor, status):
    """Locking a thread is for moderators only (not even its author)."""
    _expect(people[actor].patch(f"/api/threads/{scene['thread']}", json={"locked": True}), status)
    assert http.get(f"{forum['url']}/api/threads/{scene['thread']}").json()["thread"]["locked"] is (status == 200)


@pytest.mark.parametrize("actor, status", matrix(401, 403, 403, 200))
def test_move_thread(forum, people, scene, actor, status):
    """Moving a thread to another category is for moderators only."""
    target = unique("move-")
    assert forum["mod"].post("/api/categories", json={"slug": target, "name": "Target"}).status_code == 201
    _expect(people[actor].patch(f"/api/threads/{scene['thread']}", json={"category": target}), status)
    slug = http.get(f"{forum['url']}/api/threads/{scene['thread']}").json()["thread"]["category"]["slug"]
    assert slug == (target if status == 200 else forum["category"])


@pytest.mark.parametrize("actor, status", matrix(401, 200, 403, 200))
def test_rename_thread(forum, people, scene, actor, status):
    """Renaming a thread: its author or a moderator; another user 403; a guest 401."""
    _expect(people[actor].patch(f"/api/threads/{scene['thread']}", json={"title": f"renamed by {actor}"}), status)
    title = http.get(f"{forum['url']}/api/threads/{scene['thread']}").json()["thread"]["title"]
    assert title == (f"renamed by {actor}" if status == 200 else "A question")


def test_author_cannot_lock_while_renaming(forum, people, scene):
    """An author's PATCH that also sets `locked` → 403 and the title does not change either."""
    check_error(people["author"].patch(f"/api/threads/{scene['thread']}", json={"title": "sneaky", "locked": False}),
                403)
    assert http.get(f"{forum['url']}/api/threads/{scene['thread']}").json()["thread"]["title"] == "A question"


def test_author_cannot_rename_a_locked_thread(forum, people, scene):
    """Once a moderator locks a thread, its author's rename → 409 thread_locked; the moderator still can."""
    assert forum["mod"].patch(f"/api/threads/{scene['thread']}", json={"locked": True}).status_code == 200
    check_error(people["author"].patch(f"/api/threads/{scene['thread']}", json={"title": "after lock"}),
                409, "thread_locked")
    assert forum["mod"].patch(f"/api/threads/{scene['thread']}", json={"title": "mod"}).status_code == 200


@pytest.mark.parametrize("actor, status", matrix(401, 201, 201, 201))
def test_reply(forum, people, scene, actor, status):
    """Replying: anyone signed in; a guest 401."""
    _expect(people[actor].post(f"/api/threads/{scene['thread']}/posts", json={"body": "hi"}), status)


def test_moderator_flag_comes_from_the_database(forum, people):
    """GET /api/me shows is_moderator true for a moderator and false for others."""
    assert people["moderator"].get("/api/me").json()["user"]["is_moderator"] is True
    assert people["other"].get("/api/me").json()["user"]["is_moderator"] is False
