"""How long people stay in Active Now: the real default grace period, SIGKILL, SIGTERM.

These wait for real timeouts (15 s grace, 30 s lease), so one module fixture
plays every scenario at once and records a timeline; each test then checks
one line of it. Started together at t0:
  - `tabs`   closes both of its tabs on A             → gone after the grace, within 30 s
  - `twin`   closes its only tab on M (no REDIS_URL)  → the same, on the in-process twin
  - `killed` has a tab on K, which gets SIGKILL       → gone within 60 s
  - `termed` has a tab on T, which gets SIGTERM       → gone promptly
  - `both`   has tabs on A and on K                   → stays (A still has it)
  - `stay`   has a tab on B                           → stays
Observers: a guest socket on B and one on M (frames), and GET /api/presence on B and M every 0.25 s.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from presence_helpers import DEFAULT_GRACE, Client, ids, open_ws, start_server
from support.api import Api
from support.processes import RedisServer, ServerProcess

USERS = ("tabs", "killed", "termed", "both", "stay", "twin")
HORIZON = 62.0  # seconds after t0 we keep watching at most


class Timeline:
    """Per observed user: seconds after t0 of the first frame / GET without them, and of any absence at all."""

    def __init__(self) -> None:
        self.frame_gone: dict[str, float] = {}
        self.http_gone: dict[str, float] = {}
        self.ever_absent: dict[str, float] = {}
        self.term_exit: float | None = None


@pytest.fixture(scope="module")
async def timeline(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Timeline]:
    """Runs the whole scenario once (about 40 s) and returns what the observers saw."""
    redis = RedisServer().start()
    procs: dict[str, ServerProcess] = {}
    try:
        names = ("A", "B", "K", "T", "M")
        started = await asyncio.gather(*(asyncio.to_thread(start_server, pg_url, None if n == "M" else redis.url,
                                                           str(tmp_path_factory.mktemp("data")))
                                         for n in names), return_exceptions=True)
        procs = {n: p for n, p in zip(names, started, strict=True) if isinstance(p, ServerProcess)}
        for p in started:
            if isinstance(p, BaseException):
                raise p
        a, b, k, t, m = (procs[n] for n in ("A", "B", "K", "T", "M"))

        def sign_up(proc: Any) -> Api:
            return Api(proc.url).sign_up()
        signed = await asyncio.gather(*(asyncio.to_thread(sign_up, m if n == "twin" else a) for n in USERS))
        users = dict(zip(USERS, signed, strict=True))
        uid = {name: api.user["id"] for name, api in users.items()}  # type: ignore[index]

        async def tab(proc: Any, name: str) -> Client:
            return await open_ws(proc, users[name].session_cookie)
        tabs = [await tab(a, "tabs"), await tab(a, "tabs")]
        twin = await tab(m, "twin")
        others = [await tab(k, "killed"), await tab(t, "termed"), await tab(a, "both"), await tab(k, "both"),
                  await tab(b, "stay")]
        obs_b, obs_m = await open_ws(b), await open_ws(m)
        redis_names = ["tabs", "killed", "termed", "both", "stay"]
        everyone_b = {uid[n] for n in redis_names}
        await obs_b.wait_for(lambda f: f["type"] == "presence" and everyone_b <= ids(f), timeout=15)
        await obs_m.wait_for(lambda f: f["type"] == "presence" and uid["twin"] in ids(f), timeout=15)

        tl = Timeline()
        t0 = time.monotonic()
        mark_b, mark_m = len(obs_b.frames), len(obs_m.frames)
        await asyncio.gather(*(c.close() for c in tabs), twin.close())
        k.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        t.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]

        def record(seen: set[int], at: float, gone: dict[str, float], names: list[str]) -> None:
            for n in names:
                if uid[n] not in seen:
                    gone.setdefault(n, at)
                    tl.ever_absent.setdefault(n, at)

        scanned = {id(obs_b): mark_b, id(obs_m): mark_m}

        def scan_frames() -> None:
            for obs, names in ((obs_b, redis_names), (obs_m, ["twin"])):
                frames = obs.frames
                for at, f in frames[scanned[id(obs)]:]:
                    if f["type"] == "presence" and f["scope"] == "site":
                        record(ids(f), at - t0, tl.frame_gone, names)
                scanned[id(obs)] = len(frames)

        async def poll() -> None:
            leaving = {"tabs", "killed", "termed", "twin"}
            async with httpx.AsyncClient(timeout=5) as http:
                while time.monotonic() - t0 < HORIZON:
                    for proc, names in ((b, redis_names), (m, ["twin"])):
                        r = await http.get(proc.url + "/api/presence")
                        record(ids(r.json()), time.monotonic() - t0, tl.http_gone, names)
                    scan_frames()
                    if leaving <= tl.http_gone.keys() and leaving <= tl.frame_gone.keys():
                        await asyncio.sleep(2)  # a little longer: nobody who stays may drop out
                        scan_frames()
                        return
                    await asyncio.sleep(0.25)

        async def wait_term() -> None:
            await asyncio.to_thread(t.proc.wait, 30)  # type: ignore[union-attr]
            tl.term_exit = time.monotonic() - t0

        await asyncio.gather(poll(), wait_term())
        for c in (*others, obs_b, obs_m):
            if not c.closed:
                await c.close()
        yield tl
    finally:
        for p in procs.values():
            await asyncio.to_thread(p.stop)
        redis.stop()


def test_last_tab_closed_leaves_after_grace_and_within_30s(timeline: Timeline) -> None:
    """Closing both tabs: the user is listed for the whole default grace (15 s), and gone within 30 s."""
    for gone in (timeline.frame_gone["tabs"], timeline.http_gone["tabs"]):
        assert DEFAULT_GRACE - 0.5 <= gone <= 30, gone
    assert timeline.ever_absent["tabs"] >= DEFAULT_GRACE - 0.5


def test_in_process_twin_leaves_after_grace_and_within_30s(timeline: Timeline) -> None:
    """Without REDIS_URL the same holds: listed through the grace period, gone within 30 s."""
    for gone in (timeline.frame_gone["twin"], timeline.http_gone["twin"]):
        assert DEFAULT_GRACE - 0.5 <= gone <= 30, gone


def test_sigkill_users_leave_within_60s(timeline: Timeline) -> None:
    """Users of a process killed with SIGKILL leave Active Now on the other processes within 60 s."""
    assert timeline.frame_gone["killed"] <= 60
    assert timeline.http_gone["killed"] <= 60


def test_users_of_surviving_processes_stay(timeline: Timeline) -> None:
    """A user on a live process never drops out, nor one who also had a tab on the killed process."""
    assert "stay" not in timeline.ever_absent
    assert "both" not in timeline.ever_absent


def test_sigterm_users_leave_promptly(timeline: Timeline) -> None:
    """A graceful SIGTERM removes the process's users at once (well before the grace period ends)."""
    assert timeline.term_exit is not None and timeline.term_exit < 10
    assert timeline.frame_gone["termed"] <= timeline.term_exit + 2.5
    assert timeline.http_gone["termed"] <= timeline.term_exit + 1


def test_timeline_report(timeline: Timeline, capsys: pytest.CaptureFixture[str]) -> None:
    """Every leaver was seen leaving by both observers, in the order docs/presence.md gives (SIGTERM at once,
    closed tabs after the grace period, SIGKILL at the lease's expiry); the timeline is printed (pytest -s)."""
    with capsys.disabled():
        print(f"\npresence timeline (s after t0): frames {sorted(timeline.frame_gone.items())}"
              f" http {sorted(timeline.http_gone.items())} sigterm exit {timeline.term_exit}")
    leavers = {"tabs", "twin", "killed", "termed"}
    assert set(timeline.frame_gone) == leavers and set(timeline.http_gone) == leavers, timeline.__dict__
    for gone in (timeline.frame_gone, timeline.http_gone):
        assert gone["termed"] < gone["tabs"] < gone["killed"], gone
        assert gone["termed"] < gone["twin"] < gone["killed"], gone
