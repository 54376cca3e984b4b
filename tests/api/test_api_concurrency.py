"""Concurrent writers: exact vote scores, gap-free seq numbers, and Idempotency-Key under retries and races."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from api_support import check_error, close_all, reply, sign_up_many
from support.api import Api, new_thread, unique
from support.databases import db_fetch

N = 50


@pytest.fixture(scope="module")
def crowd(forum):
    """50 signed-in users (async clients), made once for the module."""
    loop = asyncio.new_event_loop()
    clients = loop.run_until_complete(sign_up_many(forum["url"], N))
    yield {"clients": clients, "loop": loop}
    loop.run_until_complete(close_all(clients))
    loop.close()


def test_50_concurrent_votes_end_with_the_exact_score(forum, crowd, pg_url):
    """50 users voting at once on one post → score 50, each answer a distinct running score, one event per vote."""
    thread = new_thread(forum["mod"], forum["category"])
    tid, pid = thread["thread"]["id"], thread["question"]["id"]

    async def vote_all(clients, value):
        return await asyncio.gather(*(c.put(f"/api/posts/{pid}/vote", json={"value": value}) for c in clients))

    answers = crowd["loop"].run_until_complete(vote_all(crowd["clients"], 1))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
    assert sorted(r.json()["score"] for r in answers) == list(range(1, N + 1))
    assert all(r.json()["my_vote"] == 1 for r in answers)
    assert httpx.get(f"{forum['url']}/api/threads/{tid}").json()["question"]["score"] == N
    # 20 of them turn to a down-vote at once: 50 - 2*20 = 10
    answers = crowd["loop"].run_until_complete(vote_all(crowd["clients"][:20], -1))
    assert all(r.status_code == 200 for r in answers)
    page = httpx.get(f"{forum['url']}/api/threads/{tid}").json()
    assert page["question"]["score"] == N - 40
    assert db_fetch(pg_url, "SELECT sum(value)::int AS s FROM votes WHERE post_id = $1", pid)[0]["s"] == N - 40
    evs = httpx.get(f"{forum['url']}/api/threads/{tid}/events?since=1").json()["events"]
    assert [e["name"] for e in evs] == ["vote.changed"] * 70
    assert evs[-1]["data"] == {"post_id": pid, "score": N - 40}


def test_50_concurrent_replies_get_seq_2_to_51(forum, crowd, pg_url):
    """50 replies at once → thread_events seq 2..51 with no gap or duplicate, one post.created per post."""
    thread = new_thread(forum["mod"], forum["category"])
    tid = thread["thread"]["id"]

    async def reply_all():
        return await asyncio.gather(*(c.post(f"/api/threads/{tid}/posts", json={"body": f"reply {i}"})
                                      for i, c in enumerate(crowd["clients"])))

    answers = crowd["loop"].run_until_complete(reply_all())
    assert all(r.status_code == 201 for r in answers), [r.text for r in answers if r.status_code != 201]
    ids = {r.json()["post"]["id"] for r in answers}
    assert len(ids) == N
    rows = db_fetch(pg_url, "SELECT seq, name, (data->>'id')::bigint AS post_id FROM thread_events"
                         " WHERE thread_id = $1 ORDER BY seq", tid)
    assert [r["seq"] for r in rows] == list(range(1, N + 2))
    assert all(r["name"] == "post.created" for r in rows)
    assert {r["post_id"] for r in rows[1:]} == ids
    # seq order is commit order: post ids (taken under the same thread lock) rise with seq
    assert [r["post_id"] for r in rows[1:]] == sorted(ids)
    evs = httpx.get(f"{forum['url']}/api/threads/{tid}/events?since=0").json()
    assert [e["seq"] for e in evs["events"]] == list(range(1, N + 2)) and evs["seq"] == N + 1
    assert {e["data"]["id"] for e in evs["events"][1:]} == ids
    page = httpx.get(f"{forum['url']}/api/threads/{tid}?limit=200").json()
    assert page["thread"]["seq"] == N + 1 and page["thread"]["response_count"] == N
    assert {p["id"] for p in page["responses"]} == ids


# -- Idempotency-Key ---------------------------------------------------------------


def _count_posts(pg_url: str, tid: int) -> int:
    return db_fetch(pg_url, "SELECT count(*) AS n FROM posts WHERE thread_id = $1 AND kind <> 'question'", tid)[0]["n"]


def test_idempotent_retry_returns_the_same_post_with_200(forum, pg_url):
    """The same user retrying with the same Idempotency-Key gets the first post (200), never a second one."""
    api = Api(forum["url"]).sign_up()
    tid = new_thread(forum["mod"], forum["category"])["thread"]["id"]
    key = unique("key-")
    first = reply(api, tid, "only once", **{"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    again = reply(api, tid, "only once", **{"Idempotency-Key": key})
    assert again.status_code == 200, again.text
    assert again.json()["post"]["id"] == first.json()["post"]["id"]
    assert again.json()["post"]["body"] == "only once"
    # even with another body: the key names the request, and it was already done
    third = reply(api, tid, "a different body", **{"Idempotency-Key": key})
    assert third.status_code == 200 and third.json()["post"]["id"] == first.json()["post"]["id"]
    assert _count_posts(pg_url, tid) == 1
    evs = httpx.get(f"{forum['url']}/api/threads/{tid}/events").json()
    assert evs["seq"] == 2 and [e["name"] for e in evs["events"]] == ["post.created"] * 2


def test_idempotency_keys_are_per_user(forum, pg_url):
    """Two users sending the same Idempotency-Key each get their own post (201 both)."""
    a, b = Api(forum["url"]).sign_up(), Api(forum["url"]).sign_up()
    tid = new_thread(forum["mod"], forum["category"])["thread"]["id"]
    key = unique("shared-")
    ra = reply(a, tid, "from a", **{"Idempotency-Key": key})
    rb = reply(b, tid, "from b", **{"Idempotency-Key": key})
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["post"]["id"] != rb.json()["post"]["id"]
    assert rb.json()["post"]["author"]["id"] == b.user["id"]
    assert _count_posts(pg_url, tid) == 2


def test_without_a_key_each_request_makes_a_post(forum, pg_url):
    """Without Idempotency-Key, two identical requests make two posts."""
    api = Api(forum["url"]).sign_up()
    tid = new_thread(forum["mod"], forum["category"])["thread"]["id"]
    assert reply(api, tid, "same").status_code == reply(api, tid, "same").status_code == 201
    assert _count_posts(pg_url, tid) == 2


def test_a_failed_first_attempt_does_not_use_up_the_key(forum, pg_url):
    """A request refused (thread locked → 409) leaves its key unused: the retry after unlocking posts (201)."""
    api = Api(forum["url"]).sign_up()
    tid = new_thread(forum["mod"], forum["category"])["thread"]["id"]
    assert forum["mod"].patch(f"/api/threads/{tid}", json={"locked": True}).status_code == 200
    key = unique("retry-")
    check_error(reply(api, tid, "blocked", **{"Idempotency-Key": key}), 409, "thread_locked")
    assert forum["mod"].patch(f"/api/threads/{tid}", json={"locked": False}).status_code == 200
    assert reply(api, tid, "blocked", **{"Idempotency-Key": key}).status_code == 201
    assert _count_posts(pg_url, tid) == 1


@pytest.mark.parametrize("racers", [2, 10])
def test_racing_requests_with_one_key_make_exactly_one_post(forum, pg_url, racers):
    """Requests racing with the same key make one post: one 201, the others that post (200) or 409 in progress."""
    api = Api(forum["url"]).sign_up()
    tid = new_thread(forum["mod"], forum["category"])["thread"]["id"]
    key = unique("race-")
    cookie = api.session_cookie

    async def race():
        async with httpx.AsyncClient(base_url=forum["url"], cookies={"parley_session": cookie}, timeout=30) as c:
            return await asyncio.gather(*(c.post(f"/api/threads/{tid}/posts", json={"body": "raced"},
                                                 headers={"Idempotency-Key": key}) for _ in range(racers)))

    answers = asyncio.run(race())
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) == 1, [r.text for r in answers]
    assert set(statuses) <= {200, 201, 409}, [r.text for r in answers]
    winner = next(r for r in answers if r.status_code == 201).json()["post"]["id"]
    for r in answers:
        if r.status_code == 200:
            assert r.json()["post"]["id"] == winner
        elif r.status_code == 409:
            check_error(r, 409, "idempotency_in_progress")
    assert _count_posts(pg_url, tid) == 1
    assert httpx.get(f"{forum['url']}/api/threads/{tid}/events").json()["seq"] == 2
