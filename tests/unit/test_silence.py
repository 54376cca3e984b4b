"""Auto-silence (CONTRACT rev. 3 "Trust and spam"): three distinct spam flaggers silence an account under 10
reputation; its posts are hidden from everyone but moderators and itself; it may not post; the public log says so;
a moderator's dismissal clears the flaggers' weight; a moderator lifts it and the posts come back."""

from __future__ import annotations

from typing import Any

from api_support import check_error, posted
from support import http
from support.api import Api, new_thread
from support.databases import db_fetch


def _flag(api: Api, post_id: int, reason: str = "spam") -> None:
    r = api.post(f"/api/posts/{post_id}/flags", json={"reason": reason})
    assert r.status_code == 201, r.text


def _spammer(server: Any, forum: dict[str, Any]) -> dict[str, Any]:
    """A new member with a thread of their own and a response in someone else's thread."""
    spammer, other = Api(server.url).sign_up(), Api(server.url).sign_up()
    own = new_thread(spammer, forum["category"], title="Cheap pills")
    tid = new_thread(other, forum["category"])["thread"]["id"]
    reply = posted(spammer, tid, "Buy now")
    return {"api": spammer, "other": other, "own": own, "tid": tid, "reply": reply,
            "name": spammer.user["username"]}  # type: ignore[index]


def _silenced(url: str, name: str) -> bool:
    return http.get(f"{url}/api/users/{name}").json()["user"]["silenced"]  # type: ignore[no-any-return]


def test_three_spam_flaggers_silence_a_new_account_and_hide_its_posts(server, forum):
    """The third distinct spam flagger silences: Profile silenced, log user.silenced with no moderator, 403
    silenced on posting; guests and members no longer see its posts or its thread; it and moderators still do."""
    s = _spammer(server, forum)
    guest_page = http.get(f"{server.url}/api/threads/{s['tid']}").json()  # cached for guests now
    assert s["reply"]["id"] in [p["id"] for p in guest_page["responses"]]
    flaggers = [Api(server.url).sign_up() for _ in range(3)]
    _flag(flaggers[0], s["reply"]["id"])
    _flag(flaggers[1], s["own"]["question"]["id"])
    _flag(flaggers[2], s["reply"]["id"], "rude")  # not spam: does not count
    assert not _silenced(server.url, s["name"])
    _flag(flaggers[2], s["own"]["question"]["id"])
    assert _silenced(server.url, s["name"])
    entry = http.get(f"{server.url}/api/modlog", params={"limit": 5}).json()["entries"][0]
    assert entry["action"] == "user.silenced" and entry["moderator"] is None
    assert entry["target"] == {"username": s["name"]}
    check_error(s["api"].post(f"/api/threads/{s['tid']}/posts", json={"body": "more"}), 403, "silenced")
    check_error(s["api"].post("/api/threads", json={"category": forum["category"], "title": "x", "body": "y"}),
                403, "silenced")
    own_tid = s["own"]["thread"]["id"]
    for reader in (None, s["other"]):  # a guest, a member
        get = http.get if reader is None else reader.get
        base = server.url if reader is None else ""
        page = get(f"{base}/api/threads/{s['tid']}").json()
        assert s["reply"]["id"] not in [p["id"] for p in page["responses"]]
        check_error(get(f"{base}/api/threads/{own_tid}"), 404)
        check_error(get(f"{base}/api/posts/{s['reply']['id']}"), 404)
        assert get(f"{base}/api/users/{s['name']}/posts").json()["posts"] == []
        listed = get(f"{base}/api/threads", params={"limit": 100}).json()["threads"]
        assert own_tid not in [t["id"] for t in listed]
        found = get(f"{base}/api/search", params={"q": "Buy now"}).json()["results"]
        assert s["reply"]["id"] not in [r["post"]["id"] for r in found]
    for reader in (s["api"], forum["mod"]):  # itself, a moderator
        page = reader.get(f"/api/threads/{s['tid']}").json()
        assert s["reply"]["id"] in [p["id"] for p in page["responses"]]
        assert reader.get(f"/api/threads/{own_tid}").status_code == 200
        assert reader.get(f"/api/posts/{s['reply']['id']}").status_code == 200
        assert len(reader.get(f"/api/users/{s['name']}/posts").json()["posts"]) == 2


def test_an_account_at_ten_reputation_is_not_auto_silenced(server, forum, pg_url):
    """A flag ring cannot silence an established member (10 reputation or more)."""
    s = _spammer(server, forum)
    db_fetch(pg_url, "UPDATE users SET reputation = 10 WHERE id = $1", s["api"].user["id"])
    for _ in range(3):
        _flag(Api(server.url).sign_up(), s["reply"]["id"])
    assert not _silenced(server.url, s["name"])


def test_a_dismissal_clears_those_flaggers_weight(server, forum):
    """Two flaggers whose flags a moderator dismissed count no more for that account, on any of its posts."""
    s = _spammer(server, forum)
    ring = [Api(server.url).sign_up() for _ in range(2)]
    for f in ring:
        _flag(f, s["reply"]["id"])
    flags = forum["mod"].get("/api/flags", params={"limit": 100}).json()["flags"]
    mine = next(f for f in flags if f["post_id"] == s["reply"]["id"])
    assert forum["mod"].put(f"/api/flags/{mine['id']}", json={"status": "dismissed"}).status_code == 200
    fresh = Api(server.url).sign_up()
    _flag(ring[0], s["own"]["question"]["id"])
    _flag(ring[1], s["own"]["question"]["id"])
    _flag(fresh, s["own"]["question"]["id"])
    assert not _silenced(server.url, s["name"])
    for _ in range(2):
        _flag(Api(server.url).sign_up(), s["own"]["question"]["id"])
    assert _silenced(server.url, s["name"])


def test_a_moderator_lifts_a_silence_and_the_posts_come_back(server, forum):
    """PUT silence {silenced: false} (moderator) → 200 Profile, user.unsilenced in the log, posts visible and
    posting allowed again; old flags no longer count; members may not silence, nobody may silence a moderator."""
    s = _spammer(server, forum)
    name = s["name"]
    check_error(s["other"].put(f"/api/users/{name}/silence", json={"silenced": True}), 403)
    check_error(forum["mod"].put(f"/api/users/{forum['mod'].user['username']}/silence", json={"silenced": True}),
                403)
    for _ in range(3):
        _flag(Api(server.url).sign_up(), s["reply"]["id"])
    assert _silenced(server.url, name)
    r = forum["mod"].put(f"/api/users/{name}/silence", json={"silenced": False})
    assert r.status_code == 200 and r.json()["user"]["silenced"] is False
    assert http.get(f"{server.url}/api/modlog").json()["entries"][0]["action"] == "user.unsilenced"
    page = http.get(f"{server.url}/api/threads/{s['tid']}").json()
    assert s["reply"]["id"] in [p["id"] for p in page["responses"]]
    assert posted(s["api"], s["tid"], "I am back")
    _flag(Api(server.url).sign_up(), s["reply"]["id"])  # one new flagger: the three before the lift are spent
    assert not _silenced(server.url, name)
    r = forum["mod"].put(f"/api/users/{name}/silence", json={"silenced": True, "reason": "by hand"})
    assert r.status_code == 200 and r.json()["user"]["silenced"] is True
    entry = http.get(f"{server.url}/api/modlog").json()["entries"][0]
    assert entry["action"] == "user.silenced" and entry["moderator"]["id"] == forum["mod"].user["id"]
    check_error(forum["mod"].put("/api/users/nobody-at-all-here/silence", json={"silenced": True}), 404)
