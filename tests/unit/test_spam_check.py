"""The spam check (CONTRACT rev. 3 "Trust and spam") against a real HTTP checker on loopback: new accounts' posts
it calls spam are held (pending: seen only by the author and moderators, heard of by nobody) until a moderator
publishes them live with their notifications, or deletes them; a checker that hangs, fails or babbles never blocks
posting (fail-open, counted)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from api_support import check_error
from server import metrics
from support.api import Api, new_thread
from support.databases import db_fetch, make_moderator
from support.inprocess import InProcessApp, settings_for


class Checker(BaseHTTPRequestHandler):
    """Akismet's comment-check, decided by a word in the comment: SPAM → true, HANG → no answer in time,
    FAIL500 → 500, GARBAGE → a body that is neither; anything else → false."""

    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["content-length"])).decode()).items()}
        Checker.seen.append(form)
        text = form.get("comment_content", "")
        status, answer = 200, b"false"
        if "SPAM" in text:
            answer = b"true"
        elif "HANG" in text:
            time.sleep(2)
        elif "FAIL500" in text:
            status, answer = 500, b"oops"
        elif "GARBAGE" in text:
            answer = b"<html>maybe</html>"
        try:
            self.send_response(status)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):
            pass  # HANG: the client gave up waiting, as it should

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def checked(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A loopback checker and an app (open preset) that asks it, with a short timeout; a moderator, a category."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Checker)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/1.1/comment-check"
    app = InProcessApp(settings_for(pg_url, tmp_path_factory.mktemp("spam"), spam_check_url=url,
                                    spam_check_timeout_seconds=0.5, db_pool_size=2)).start()
    mod = Api(app.url).sign_up()
    make_moderator(pg_url, mod.user["username"])  # type: ignore[index]
    slug = f"spam-{time.monotonic_ns()}"
    assert mod.post("/api/categories", json={"slug": slug, "name": "Spam"}).status_code == 201
    try:
        yield {"app": app, "mod": mod, "category": slug}
    finally:
        app.stop()
        httpd.shutdown()


def _ids(page: dict[str, Any]) -> list[int]:
    return [r["id"] for r in page["responses"]]


def test_a_post_called_spam_is_held_until_a_moderator_publishes_it(checked):
    """SPAM → 201 pending; the author and moderators see it marked, a guest and the asker do not, and the asker is
    not notified; approval publishes it: a post.created event, the asker's notification, everyone sees it."""
    app, mod = checked["app"], checked["mod"]
    asker, newbie = Api(app.url).sign_up(), Api(app.url).sign_up()
    tid = new_thread(asker, checked["category"])["thread"]["id"]
    seq = asker.get(f"/api/threads/{tid}").json()["thread"]["seq"]
    r = newbie.post(f"/api/threads/{tid}/posts", json={"body": "Cheap SPAM pills"})
    assert r.status_code == 201, r.text
    held = r.json()["post"]
    assert held["pending"] is True
    assert Checker.seen[-1]["comment_author"] == newbie.user["username"]  # type: ignore[index]
    assert Checker.seen[-1]["comment_type"] == "reply"
    mine = newbie.get(f"/api/threads/{tid}").json()
    assert _ids(mine) == [held["id"]] and mine["responses"][0]["pending"] is True
    assert mod.get(f"/api/threads/{tid}").json()["responses"][0]["pending"] is True
    guest = Api(app.url)
    for reader in (guest, asker):
        page = reader.get(f"/api/threads/{tid}").json()
        assert _ids(page) == [] and page["thread"]["seq"] == seq  # no event either
        check_error(reader.get(f"/api/posts/{held['id']}"), 404)
    assert asker.get("/api/notifications").json()["unread"] == 0
    assert held["id"] not in [r["post"]["id"] for r in guest.get("/api/search", params={"q": "Cheap pills"}).json()[
        "results"]]
    check_error(newbie.put(f"/api/posts/{held['id']}/approval", json={"approved": True}), 403)
    check_error(newbie.get("/api/pending"), 403)
    assert held["id"] in [p["id"] for p in mod.get("/api/pending", params={"limit": 100}).json()["posts"]]
    r = mod.put(f"/api/posts/{held['id']}/approval", json={"approved": True})
    assert r.status_code == 200, r.text
    assert "pending" not in r.json()["post"]
    assert held["id"] not in [p["id"] for p in mod.get("/api/pending", params={"limit": 100}).json()["posts"]]
    events = guest.get(f"/api/threads/{tid}/events", params={"since": seq}).json()["events"]
    assert [(e["name"], e["data"]["id"]) for e in events] == [("post.created", held["id"])]
    assert _ids(guest.get(f"/api/threads/{tid}").json()) == [held["id"]]
    notes = asker.get("/api/notifications").json()
    assert notes["unread"] == 1 and notes["notifications"][0]["post_id"] == held["id"]
    assert guest.get(f"/api/threads/{tid}").json()["thread"]["response_count"] == 1
    check_error(mod.put(f"/api/posts/{held['id']}/approval", json={"approved": True}), 409, "not_pending")


def test_a_retried_held_post_is_held_once(checked):
    """The same Idempotency-Key sent twice for a post the checker calls spam: 201 held, then 200 with the same held
    post; one post waits for a moderator, not two."""
    app, mod = checked["app"], checked["mod"]
    asker, newbie = Api(app.url).sign_up(), Api(app.url).sign_up()
    tid = new_thread(asker, checked["category"])["thread"]["id"]
    key = {"Idempotency-Key": "held-" + uuid.uuid4().hex}
    first = newbie.post(f"/api/threads/{tid}/posts", json={"body": "Held SPAM once"}, headers=key)
    again = newbie.post(f"/api/threads/{tid}/posts", json={"body": "Held SPAM once"}, headers=key)
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert first.json()["post"]["pending"] is True and again.json()["post"]["id"] == first.json()["post"]["id"]
    waiting = [p for p in mod.get("/api/pending", params={"limit": 100}).json()["posts"] if p["thread_id"] == tid]
    assert [p["id"] for p in waiting] == [first.json()["post"]["id"]]


def test_a_refused_post_is_deleted_and_never_seen(checked):
    """approved false deletes the held post: its author sees it deleted, nobody else ever saw it."""
    app, mod = checked["app"], checked["mod"]
    asker, newbie = Api(app.url).sign_up(), Api(app.url).sign_up()
    tid = new_thread(asker, checked["category"])["thread"]["id"]
    held = newbie.post(f"/api/threads/{tid}/posts", json={"body": "More SPAM"}).json()["post"]
    r = mod.put(f"/api/posts/{held['id']}/approval", json={"approved": False})
    assert r.status_code == 200 and r.json()["post"]["deleted"] is True
    assert _ids(Api(app.url).get(f"/api/threads/{tid}").json()) == []
    assert Api(app.url).get(f"/api/threads/{tid}").json()["thread"]["response_count"] == 0


@pytest.mark.parametrize("word, reason", [("HANG", "timeout"), ("FAIL500", "status"), ("GARBAGE", "answer")])
def test_a_checker_that_fails_never_blocks_posting(checked, word, reason):
    """A checker that hangs past the timeout, answers 500 or answers garbage: the post is published, and the
    failure is counted by reason."""
    app = checked["app"]
    before = metrics.SPAM_CHECK_FAILURES.labels(reason)._value.get()
    newbie = Api(app.url).sign_up()
    tid = new_thread(checked["mod"], checked["category"])["thread"]["id"]
    r = newbie.post(f"/api/threads/{tid}/posts", json={"body": f"An honest answer {word}"})
    assert r.status_code == 201, r.text
    assert "pending" not in r.json()["post"]
    assert _ids(Api(app.url).get(f"/api/threads/{tid}").json()) == [r.json()["post"]["id"]]
    assert metrics.SPAM_CHECK_FAILURES.labels(reason)._value.get() == before + 1


def test_established_members_are_not_checked(checked, pg_url):
    """At 10 reputation (and for moderators) the checker is never asked: SPAM in the text is published."""
    app = checked["app"]
    member = Api(app.url).sign_up()
    db_fetch(pg_url, "UPDATE users SET reputation = 10 WHERE id = $1", member.user["id"])  # type: ignore[index]
    tid = new_thread(checked["mod"], checked["category"])["thread"]["id"]
    asked = len(Checker.seen)
    for api in (member, checked["mod"]):
        r = api.post(f"/api/threads/{tid}/posts", json={"body": "About SPAM filters"})
        assert r.status_code == 201 and "pending" not in r.json()["post"]
    assert len(Checker.seen) == asked


def test_a_new_thread_called_spam_is_held_with_its_question(checked):
    """A new account's thread the checker calls spam: 201 with its question pending; out of every list, 404 for a
    guest, there for its author and moderators, no tag follower hears of it; approval publishes the question as the
    thread's event 1 and notifies its tag's followers then."""
    app, mod = checked["app"], checked["mod"]
    newbie, follower = Api(app.url).sign_up(), Api(app.url).sign_up()
    tag = "held" + uuid.uuid4().hex[:8]
    assert mod.post("/api/threads", json={"category": checked["category"], "title": "Makes the tag", "body": "b",
                                          "tags": [tag]}).status_code == 201
    assert follower.put(f"/api/tags/{tag}/following", json={"following": True}).status_code == 200
    r = newbie.post("/api/threads", json={"category": checked["category"], "title": "Cheap watches",
                                          "body": "SPAM everywhere", "tags": [tag]})
    assert r.status_code == 201, r.text
    made = r.json()
    tid, qid = made["thread"]["id"], made["question"]["id"]
    assert made["question"]["pending"] is True and made["thread"]["seq"] == 0
    assert Checker.seen[-1]["comment_type"] == "forum-post"
    guest = Api(app.url)
    check_error(guest.get(f"/api/threads/{tid}"), 404)
    assert tid not in [t["id"] for t in guest.get("/api/threads", params={"limit": 100}).json()["threads"]]
    assert tid not in [t["id"] for t in newbie.get("/api/threads", params={"limit": 100}).json()["threads"]]
    assert newbie.get(f"/api/threads/{tid}").json()["question"]["pending"] is True
    assert mod.get(f"/api/threads/{tid}").status_code == 200
    assert qid in [p["id"] for p in mod.get("/api/pending", params={"limit": 100}).json()["posts"]]
    assert follower.get("/api/notifications").json()["notifications"] == []  # nobody hears of a held question
    assert mod.put(f"/api/posts/{qid}/approval", json={"approved": True}).status_code == 200
    heard = follower.get("/api/notifications").json()["notifications"]
    assert [(n["kind"], n["post_id"]) for n in heard] == [("tagged", qid)]  # its tag's followers, once approved
    page = guest.get(f"/api/threads/{tid}").json()
    assert page["thread"]["seq"] == 1 and "pending" not in page["question"]
    assert [e["name"] for e in guest.get(f"/api/threads/{tid}/events").json()["events"]] == ["post.created"]
    assert tid in [t["id"] for t in guest.get("/api/threads", params={"limit": 100}).json()["threads"]]
