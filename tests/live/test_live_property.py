"""Snapshot + events = fresh fetch, for random histories (hypothesis), against a real server, with the
events applied by the page's own web/js/apply.js running in Node (tests/live/apply_driver.mjs)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apply_js import NodeApplier, running
from support.api import Api, new_thread


@pytest.fixture(scope="module")
def applier() -> Iterator[NodeApplier]:
    """web/js/apply.js in Node; without node the test skips locally but FAILS in CI (.ci/run installs it)."""
    yield from running()


def test_node_driver_runs_the_real_apply_js(applier):
    """The driver applies events with web/js/apply.js itself: a duplicate seq is ignored, a new response is
    appended with the count raised, and a deleted response is blanked with the count lowered once."""
    state = {"thread": {"id": 3, "seq": 5, "response_count": 0}, "question": {"id": 1, "kind": "question"},
             "responses": []}
    post = {"id": 9, "kind": "response", "body": "hi", "html": "<p>hi</p>", "deleted": False, "my_vote": 0,
            "created_at": "2026-01-01T00:00:00Z"}
    events = [{"type": "event", "thread": 3, "seq": 5, "name": "post.created", "data": {**post, "id": 8}},
              {"type": "event", "thread": 3, "seq": 6, "name": "post.created", "data": post}]
    after = applier.apply(state, events)
    assert [r["id"] for r in after["responses"]] == [9] and after["thread"]["response_count"] == 1
    deleted = applier.apply(after, [{"type": "event", "thread": 3, "seq": 7, "name": "post.deleted",
                                     "data": {"id": 9}}])
    assert deleted["responses"][0]["deleted"] and deleted["responses"][0]["body"] == ""
    assert deleted["thread"]["seq"] == 7 and deleted["thread"]["response_count"] == 0
    again = applier.apply(deleted, [{"type": "event", "thread": 3, "seq": 8, "name": "post.deleted",
                                     "data": {"id": 9}}])
    assert again["thread"]["seq"] == 8 and again["thread"]["response_count"] == 0  # counted once

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


async def check_history(url: str, ws_url: str, category: str, people: list[Api], ops: list, split: tuple[int, int],
                        applier: NodeApplier) -> None:
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
        events: list[dict[str, Any]] = []
        last = snapshot["thread"]["seq"]
        while last < final_seq:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "event":
                assert frame["seq"] == last + 1, "gap or duplicate"
                events.append(frame)
                last = frame["seq"]
            elif frame["type"] == "subscribed":
                assert not frame.get("reset")
    fresh = httpx.get(f"{url}/api/threads/{tid}").json()
    assert applier.apply(snapshot, events) == fresh


def test_snapshot_plus_events_equals_fresh_fetch(server, forum, applier):
    """For random posts, comments, edits, votes, deletes, renames and accepts, some made while the client loads,
    GET + subscribe(since=seq) + applying the events with web/js/apply.js ends with exactly a fresh GET."""
    people = [Api(server.url).sign_up() for _ in range(3)]

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(ops=OPS, seed=st.integers(0, 2**16))
    # Always tried: responses deleted after the snapshot, one made before it and one live (seed 1 puts
    # the first op before the GET and the rest after the subscribe): response_count must follow.
    @example(ops=[("respond", 0, 0), ("respond", 1, 1), ("comment", 0, 2), ("delete", 1, 0), ("delete", 0, 0)],
             seed=1)
    def prop(ops, seed):
        rnd = random.Random(seed)
        before = rnd.randint(0, len(ops))
        during = rnd.randint(before, len(ops))
        asyncio.run(check_history(server.url, server.ws_url, forum["category"], people, ops, (before, during),
                                  applier))

    prop()
