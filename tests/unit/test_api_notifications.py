"""Notifications over HTTP: kinds, priority, self, edits adding mentions, the 20 cap, withdrawal, reading."""

from __future__ import annotations

from typing import Any

from api_support import TIME, check_error, check_user_brief, posted, reply
from support.api import Api, new_thread, unique

NOTIFICATION = {"id", "kind", "created_at", "read", "actor", "thread", "post_id"}


def inbox(api: Api, **params: Any) -> dict[str, Any]:
    r = api.get("/api/notifications", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"notifications", "unread", "next"}, body
    for n in body["notifications"]:
        assert set(n) == NOTIFICATION, n
        assert TIME.match(n["created_at"]) and isinstance(n["read"], bool)
        check_user_brief(n["actor"])
        assert set(n["thread"]) == {"id", "title"}
    return body  # type: ignore[no-any-return]


def kinds(api: Api, post_id: int) -> list[str]:
    return [n["kind"] for n in inbox(api, limit=100)["notifications"] if n["post_id"] == post_id]


def people(url: str, n: int) -> list[Api]:
    return [Api(url).sign_up() for _ in range(n)]


def test_a_response_notifies_the_asker_and_followers_but_not_the_responder(forum):
    """A response gives the asker `response`, an earlier poster `followed`, and the responder nothing."""
    asker, early, responder = people(forum["url"], 3)
    tid = new_thread(asker, forum["category"], "Who answers?")["thread"]["id"]
    posted(early, tid, "I posted first")
    post = posted(responder, tid, "Here is an answer")
    assert kinds(asker, post["id"]) == ["response"]
    assert kinds(early, post["id"]) == ["followed"]
    assert kinds(responder, post["id"]) == []
    n = [n for n in inbox(asker)["notifications"] if n["post_id"] == post["id"]][0]
    assert n["actor"]["id"] == responder.user["id"] and n["thread"] == {"id": tid, "title": "Who answers?"}
    assert n["read"] is False


def test_a_comment_notifies_the_response_author_and_the_asker_once_each(forum):
    """A comment gives the response's author and the asker `comment`, not also `followed`."""
    asker, responder, commenter = people(forum["url"], 3)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    resp = posted(responder, tid, "An answer")
    comment = posted(commenter, tid, "A remark", parent_id=resp["id"])
    assert kinds(responder, comment["id"]) == ["comment"]
    assert kinds(asker, comment["id"]) == ["comment"]


def test_a_mention_is_the_most_specific_kind_and_is_linked(forum):
    """Mentioning the asker in a response gives them one `mention`, and the body links to their profile."""
    asker, responder = people(forum["url"], 2)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    name = asker.user["username"]
    post = posted(responder, tid, f"Hello @{name.upper()}, and `@{name}` in code")
    assert kinds(asker, post["id"]) == ["mention"]
    assert f'<a class="mention" href="/u/{name}">@{name}</a>' in post["html"]
    assert f"<code>@{name}</code>" in post["html"]


def test_nobody_is_notified_of_their_own_post_or_mention(forum):
    """The asker responding in their own thread and mentioning themselves gets nothing."""
    (asker,) = people(forum["url"], 1)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    post = posted(asker, tid, f"Replying to myself, @{asker.user['username']}")
    assert kinds(asker, post["id"]) == []


def test_unknown_names_and_mentions_in_code_are_not_links_nor_notified(forum):
    """@nobody stays text; a name inside a code block is not a mention."""
    asker, responder, coder = people(forum["url"], 3)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    post = posted(responder, tid, f"@{unique('nobody')} there\n\n```\n@{coder.user['username']}\n```")
    assert 'class="mention"' not in post["html"]
    assert kinds(coder, post["id"]) == []


def test_an_edit_notifies_only_the_newly_mentioned(forum):
    """Adding a mention by an edit notifies that user; someone already notified is not notified again."""
    asker, responder, first, second = people(forum["url"], 4)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    post = posted(responder, tid, f"cc @{first.user['username']}")
    assert kinds(first, post["id"]) == ["mention"]
    r = responder.patch(f"/api/posts/{post['id']}",
                        json={"body": f"cc @{first.user['username']} @{second.user['username']}"})
    assert r.status_code == 200, r.text
    assert kinds(first, post["id"]) == ["mention"]
    assert kinds(second, post["id"]) == ["mention"]
    assert kinds(asker, post["id"]) == ["response"]  # the edit did not notify the asker again


def test_at_most_twenty_users_are_notified_of_mentions_per_post(forum):
    """A post mentioning 22 users notifies the first 20; an edit adding more notifies nobody new."""
    asker, responder = people(forum["url"], 2)
    crowd = people(forum["url"], 23)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    body = " ".join(f"@{p.user['username']}" for p in crowd[:22])
    post = posted(responder, tid, body)
    got = [bool(kinds(p, post["id"])) for p in crowd[:22]]
    assert got == [True] * 20 + [False] * 2
    assert post["html"].count('class="mention"') == 22  # every existing name is linked
    r = responder.patch(f"/api/posts/{post['id']}", json={"body": body + f" @{crowd[22].user['username']}"})
    assert r.status_code == 200, r.text
    assert kinds(crowd[22], post["id"]) == []


def test_deleting_a_post_withdraws_its_notifications(forum):
    """After the post is deleted its notifications are neither listed nor counted."""
    asker, responder = people(forum["url"], 2)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    before = inbox(asker)["unread"]
    post = posted(responder, tid, "Soon gone")
    assert inbox(asker)["unread"] == before + 1
    assert responder.delete(f"/api/posts/{post['id']}").status_code == 204
    assert kinds(asker, post["id"]) == []
    assert inbox(asker)["unread"] == before


def test_deleting_a_thread_withdraws_every_notification_of_it(forum):
    """A moderator deleting the question (the thread) withdraws the notifications of all its posts, and only those."""
    asker, responder, commenter = people(forum["url"], 3)
    made = new_thread(asker, forum["category"])
    tid = made["thread"]["id"]
    other = new_thread(asker, forum["category"], "Another question")["thread"]["id"]
    before = {p: inbox(p)["unread"] for p in (asker, responder)}
    resp = posted(responder, tid, "An answer")
    comment = posted(commenter, tid, "A remark", parent_id=resp["id"])
    kept = posted(responder, other, "An answer elsewhere")
    assert inbox(asker)["unread"] == before[asker] + 3 and inbox(responder)["unread"] == before[responder] + 1
    assert forum["mod"].delete(f"/api/posts/{made['question']['id']}").status_code == 204
    assert kinds(asker, resp["id"]) == [] and kinds(asker, comment["id"]) == []
    assert kinds(responder, comment["id"]) == []
    assert kinds(asker, kept["id"]) == ["response"]
    assert inbox(asker)["unread"] == before[asker] + 1 and inbox(responder)["unread"] == before[responder]


def test_reading_some_or_all_notifications(forum):
    """Marking ids read lowers the count by those; all: true clears it; someone else's ids change nothing."""
    asker, responder, other = people(forum["url"], 3)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    for i in range(3):
        posted(responder, tid, f"answer {i}")
    items = inbox(asker)["notifications"]
    assert inbox(asker)["unread"] == 3
    r = other.post("/api/notifications/read", json={"ids": [items[0]["id"]]})
    assert r.status_code == 200 and r.json() == {"unread": 0}
    r = asker.post("/api/notifications/read", json={"ids": [items[0]["id"]]})
    assert r.status_code == 200 and r.json() == {"unread": 2}
    assert inbox(asker)["notifications"][0]["read"] is True
    r = asker.post("/api/notifications/read", json={"all": True})
    assert r.status_code == 200 and r.json() == {"unread": 0}
    assert all(n["read"] for n in inbox(asker)["notifications"])


def test_notifications_page_newest_first_without_duplicates(forum):
    """limit/before page through every notification once, newest first."""
    asker, responder = people(forum["url"], 2)
    tid = new_thread(asker, forum["category"])["thread"]["id"]
    made = [posted(responder, tid, f"answer {i}")["id"] for i in range(5)]
    seen, before = [], None
    while True:
        page = inbox(asker, limit=2, **({"before": before} if before else {}))
        seen += [n["post_id"] for n in page["notifications"]]
        before = page["next"]
        if before is None:
            break
    assert seen == made[::-1]


def test_notification_endpoints_refuse_guests_and_bad_input(forum):
    """Guests get 401; a bad body or cursor gets the contract's error shape, never a 500."""
    guest = Api(forum["url"])
    check_error(guest.get("/api/notifications"), 401)
    check_error(guest.post("/api/notifications/read", json={"all": True}), 401)
    (member,) = people(forum["url"], 1)
    r = member.post("/api/notifications/read", json={})  # nothing named: nothing changes
    assert r.status_code == 200 and r.json() == {"unread": 0}
    check_error(member.post("/api/notifications/read", json={"ids": ["x"]}), 422)
    check_error(member.get("/api/notifications?before=nonsense"), 404, "bad_cursor")  # cursor-shaped, no position
    check_error(member.get("/api/notifications?before=%25%25"), 400, "bad_cursor")
    check_error(member.get("/api/notifications?limit=0"), 400)


def test_user_search_by_prefix_of_username_or_display_name(forum):
    """GET /api/users?q= finds users by a prefix of either name, any case, at most `limit`."""
    tag = unique("zq")
    a = Api(forum["url"]).sign_up(f"{tag}a", display_name="Someone")
    b = Api(forum["url"]).sign_up(unique("x"), display_name=f"{tag.upper()} Display")
    r = Api(forum["url"]).get("/api/users", params={"q": tag.upper()})
    assert r.status_code == 200, r.text
    ids = [u["id"] for u in r.json()["users"]]
    assert set(ids) == {a.user["id"], b.user["id"]}
    for u in r.json()["users"]:
        check_user_brief(u)
    r = Api(forum["url"]).get("/api/users", params={"q": tag, "limit": 1})
    assert len(r.json()["users"]) == 1
    r = Api(forum["url"]).get("/api/users", params={"q": tag[:2] + "%"})  # no wildcards: nobody's name has a %
    assert r.status_code == 200 and r.json()["users"] == []
    check_error(Api(forum["url"]).get("/api/users", params={"q": ""}), 400, field="q")
    check_error(Api(forum["url"]).get("/api/users", params={"q": "x" * 33}), 400, field="q")
    check_error(Api(forum["url"]).get("/api/users", params={"q": "ab", "limit": 21}), 400, field="limit")


def test_reply_to_a_missing_thread_makes_no_notification(forum):
    """A refused post (404) leaves no notification behind."""
    (member,) = people(forum["url"], 1)
    r = reply(member, 10**15, "nothing here")
    check_error(r, 404)
