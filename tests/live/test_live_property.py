"""Snapshot + events = fresh fetch, for random histories (hypothesis), against a real server."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from applier import apply
from helpers import Api, new_thread

OPS = st.lists(
    st.tuples(st.sampled_from(["respond", "comment", "edit", "vote", "unvote", "delete", "retitle", "accept",
                               "qvote"]),
              st.integers(0, 1000), st.sampled_from([0, 1, 2])),
    min_size=1, max_size=25)


def run_op(op: tuple[str, int, int], tid: int, people: list[Api], made: list[dict]) -> None:
    kind, pick, who = op
    api = people[who]
    responses = [p for p in made if p["kind"] == "response" and not p.get("gone")]
    if kind == "respond" or not made:
        r = api.post(f"/api/threads/{tid}/posts", json={"body": f"response {pick}"})
        assert r.status_code == 201
        made.append(r.json()["post"])
    elif kind == "comment" and responses:
        parent = responses[pick % len(responses)]
        r = api.post(f"/api/threads/{tid}/posts", json={"body": f"comment {pick}", "parent_id": parent["id"]})
        assert r.status_code == 201
        made.append(r.json()["post"])
    elif kind == "edit":
        post = made[pick % len(made)]
        owner = next(p for p in people if p.user["id"] == post["author"]["id"])
        r = owner.patch(f"/api/posts/{post['id']}", json={"body": f"edited {pick}"})
        assert r.status_code in (200, 409)
    elif kind in ("vote", "unvote"):
        post = made[pick % len(made)]
        voter = next(p for p in people if p.user["id"] != post["author"]["id"])
        r = voter.put(f"/api/posts/{post['id']}/vote", json={"value": (pick % 2) * 2 - 1 if kind == "vote" else 0})
        assert r.status_code in (200, 409)
    elif kind == "delete":
        post = made[pick % len(made)]
        owner = next(p for p in people if p.user["id"] == post["author"]["id"])
        assert owner.delete(f"/api/posts/{post['id']}").status_code == 204
        post["gone"] = True
    elif kind == "retitle":
        r = people[0].patch(f"/api/threads/{tid}", json={"title": f"Title {pick}"})
        assert r.status_code == 200
    elif kind == "accept":  # people[0] asked: accept a live response, or withdraw
        choice = responses[pick % len(responses)]["id"] if responses and pick % 4 else None
        r = people[0].put(f"/api/threads/{tid}/accepted", json={"post_id": choice})
        assert r.status_code == 200, r.text
    elif kind == "qvote":  # a vote on the question moves the thread's score
        question = httpx.get(f"{people[0].http.base_url}/api/threads/{tid}").json()["question"]["id"]
        r = people[1 + pick % 2].put(f"/api/posts/{question}/vote", json={"value": pick % 3 - 1})
        assert r.status_code == 200, r.text


async def check_history(url: str, ws_url: str, category: str, people: list[Api], ops: list, split: tuple[int, int]):
    tid = new_thread(people[0], category)["thread"]["id"]
    made: list[dict] = []
    before, during = split
    for op in ops[:before]:
        run_op(op, tid, people, made)
    snapshot = httpx.get(f"{url}/api/threads/{tid}").json()  # as a guest: my_vote is 0 everywhere
    for op in ops[before:during]:  # the client is "loading": changes happen before it subscribes
        run_op(op, tid, people, made)
    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "thread": tid, "since": snapshot["thread"]["seq"]}))
        for op in ops[during:]:
            await asyncio.to_thread(run_op, op, tid, people, made)
        final_seq = httpx.get(f"{url}/api/threads/{tid}").json()["thread"]["seq"]
        state = snapshot
        while state["thread"]["seq"] < final_seq:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "event":
                assert frame["seq"] == state["thread"]["seq"] + 1, "gap or duplicate"
                apply(state, frame)
            elif frame["type"] == "subscribed":
                assert not frame.get("reset")
    fresh = httpx.get(f"{url}/api/threads/{tid}").json()
    assert state == fresh


def test_snapshot_plus_events_equals_fresh_fetch(server, forum):
    """For random posts, comments, edits, votes, deletes, renames and accepts, some made while the client loads,
    GET + subscribe(since=seq) + applying the events ends with exactly what a fresh GET returns."""
    people = [Api(server.url).sign_up() for _ in range(3)]

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(ops=OPS, seed=st.integers(0, 2**16))
    def prop(ops, seed):
        rnd = random.Random(seed)
        before = rnd.randint(0, len(ops))
        during = rnd.randint(before, len(ops))
        asyncio.run(check_history(server.url, server.ws_url, forum["category"], people, ops, (before, during)))

    prop()
