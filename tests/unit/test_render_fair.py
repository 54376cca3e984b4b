"""The render queue's fairness (server/render.py FairQueue), on a stepped clock: per-user queues served by the
least recent render time, so one user's slow bodies, or many users' ones, never stand before another's."""

from __future__ import annotations

import asyncio

import pytest

from server.errors import Unavailable
from server.render import FairQueue, Renderer
from support.clock import Clock


def serve(q: FairQueue, clock: Clock, cost: dict[str, float]) -> str:
    """One worker takes the next job, runs it for its user's cost (the clock moves), and reports it."""
    nxt = q.pop()
    assert nxt is not None
    key, job = nxt
    charged = q.start(key)
    clock.now += cost[key]
    q.finish(key, charged, cost[key])
    return f"{key}:{job}"


def test_a_flooders_queue_does_not_delay_another_users_first_body() -> None:
    """A user with ten slow bodies queued, who has used the worker already, does not go before a user who
    has not: the newcomer's body is the next one served."""
    clock = Clock()
    q = FairQueue(clock=clock)
    cost = {"flood": 0.8, "ada": 0.01}
    for i in range(10):
        q.push("flood", i)
    assert serve(q, clock, cost) == "flood:0"
    q.push("ada", "post")
    assert serve(q, clock, cost) == "ada:post"
    assert [serve(q, clock, cost) for _ in range(9)] == [f"flood:{i}" for i in range(1, 10)]


def test_sixty_flooders_do_not_stand_before_a_normal_user() -> None:
    """Sixty accounts with slow bodies queued (each served once already): a normal user's post waits for no
    queued flood body, and their second post neither; the flooders are served in turn meanwhile."""
    clock = Clock()
    q = FairQueue(clock=clock)
    flooders = [f"f{i}" for i in range(60)]
    cost = {**{f: 0.6 for f in flooders}, "ada": 0.02}
    for round_ in range(3):
        for f in flooders:
            q.push(f, round_)
    first = [serve(q, clock, cost) for _ in range(60)]
    assert sorted(first) == sorted(f"{f}:0" for f in flooders)  # one each, in turn
    q.push("ada", "one")
    assert serve(q, clock, cost) == "ada:one"
    assert serve(q, clock, cost).endswith(":1")
    q.push("ada", "two")
    assert serve(q, clock, cost) == "ada:two"


def test_users_with_equal_costs_take_turns_and_cost_weighs() -> None:
    """Two flooders with equal costs alternate whatever they queued; one whose bodies cost four times as much
    is served about a quarter as often while both wait."""
    clock = Clock()
    q = FairQueue(clock=clock)
    for i in range(20):
        q.push("a", i)
        q.push("b", i)
    order = [serve(q, clock, {"a": 0.5, "b": 0.5}).split(":")[0] for _ in range(10)]
    assert order == ["a", "b"] * 5
    q2 = FairQueue(clock=clock)
    for i in range(40):
        q2.push("slow", i)
        q2.push("quick", i)
    served = [serve(q2, clock, {"slow": 0.8, "quick": 0.2}).split(":")[0] for _ in range(30)]
    assert 5 <= served.count("slow") <= 7 and served.count("quick") >= 23


def test_usage_decays_so_a_past_flooder_is_not_punished_for_ever() -> None:
    """Usage halves every half-life: a user who flooded long ago competes as an equal again."""
    clock = Clock()
    q = FairQueue(half_life=60, clock=clock)
    q.finish("old", 0.0, 30.0)
    assert q.usage("old") == pytest.approx(30.0)
    clock.now += 60
    assert q.usage("old") == pytest.approx(15.0)
    clock.now += 60 * 20
    assert q.usage("old") < 1e-4
    q.finish("recent", 0.0, 0.05)  # one ordinary post a moment ago
    q.push("recent", "y")
    q.push("old", "x")
    assert q.pop() == ("old", "x")


def test_two_workers_freed_together_go_to_two_users() -> None:
    """A worker taken is charged at once with the user's last cost, so a second worker freed at the same
    moment goes to the other waiting user, not to the same flooder again."""
    clock = Clock()
    q = FairQueue(clock=clock)
    q.finish("flood", 0.0, 0.5)  # last cost 0.5
    q.finish("bob", 0.0, 0.6)
    clock.now += 1
    for i in range(5):
        q.push("flood", i)
    q.push("bob", "b")
    key1, _ = q.pop() or ("", None)
    q.start(key1)
    key2, _ = q.pop() or ("", None)
    assert (key1, key2) == ("flood", "bob")


def test_removed_job_is_not_served_and_memory_is_bounded() -> None:
    """A job whose request gave up leaves its queue; users decayed to nothing are forgotten."""
    clock = Clock()
    q = FairQueue(half_life=1, clock=clock)
    q.push("a", "x")
    q.push("a", "y")
    assert q.remove("a", "x") and not q.remove("a", "x") and len(q) == 1
    assert q.pop() == ("a", "y") and q.pop() is None and len(q) == 0
    for i in range(3000):
        q.finish(i, 0.0, 0.1)
    clock.now += 100
    q.finish("last", 0.0, 0.1)
    assert len(q.used) < 1100


def test_renderer_hands_a_free_worker_to_the_fair_choice_and_a_waiter_that_gives_up_loses_none() -> None:
    """The Renderer's waiters queue per user: a freed worker goes to the user with the least usage even if
    they came last; a waiter cancelled after a worker was handed to it passes the worker on; past `wait`
    a waiter gets 503 and leaves the queue."""
    async def settle() -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    async def run() -> None:
        r = Renderer(workers=1, wait=5)  # never started: workers are stand-ins
        r.queue.finish("flood", 0.0, 5.0)
        got: list[tuple[str, object]] = []

        async def want(key: str) -> None:
            got.append((key, await r._acquire(key)))

        flood = [asyncio.create_task(want("flood")) for _ in range(3)]
        await settle()
        ada = asyncio.create_task(want("ada"))
        await settle()
        assert len(r.queue) == 4
        r._release("w1")  # type: ignore[arg-type]
        await settle()
        assert got == [("ada", "w1")]
        await ada
        # A waiter cancelled right after being handed a worker: the worker goes to the next one.
        r._release("w2")  # type: ignore[arg-type]
        flood[0].cancel()
        await settle()
        assert [w for k, w in got if k == "flood"] == ["w2"] and len(r.queue) == 1
        short = Renderer(workers=1, wait=0.01)
        with pytest.raises(Unavailable):
            await short._acquire("x")
        assert len(short.queue) == 0
        for t in flood[1:]:
            t.cancel()
    asyncio.run(run())
