"""A join storm: N sockets (500; PARLEY_PRESENCE_STORM=1000 for the docs figure) join two processes at once.

Counts presence frames per socket and Redis commands per join (INFO
commandstats of a Redis of our own, reset just before the storm; it
counts the commands run inside presence's scripts too).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis as redis_client

from presence_helpers import Client, bulk_users, open_ws, site, start_server
from support.processes import RedisServer, ServerProcess

N = int(os.environ.get("PARLEY_PRESENCE_STORM", "500"))
QUIET = 3.0  # seconds without a presence frame anywhere: the storm has settled


@pytest.fixture(scope="module")
def storm_env(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    redis = RedisServer().start()
    procs: list[ServerProcess] = []
    try:
        for _ in range(2):
            procs.append(start_server(pg_url, redis.url, str(tmp_path_factory.mktemp("data"))))
        yield {"redis": redis, "procs": procs, "users": bulk_users(pg_url, N)}
    finally:
        for p in procs:
            p.stop()
        redis.stop()


def page_ids(proc: ServerProcess) -> list[int]:
    got: list[int] = []
    after = ""
    while True:
        r = httpx.get(f"{proc.url}/api/presence?limit=200" + (f"&after={after}" if after else ""), timeout=10)
        assert r.status_code == 200, r.text
        got += [u["id"] for u in r.json()["users"]]
        if not (after := r.json()["next"]):
            assert len(got) == len(set(got))
            return got


def command_stats(r: redis_client.Redis) -> dict[str, int]:
    stats = r.info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()
            if k.removeprefix("cmdstat_") not in ("info", "config|resetstat", "config")}


async def test_join_storm_sends_a_bounded_number_of_presence_frames(storm_env: dict[str, Any]) -> None:
    """N sockets joining two processes at once: each gets a few bounded presence frames (≈1/s), not one per
    join, and costs well under 2 Redis round-trip commands per join; in the end every frame counts all N."""
    procs: list[ServerProcess] = storm_env["procs"]
    users = storm_env["users"]
    r = redis_client.Redis.from_url(storm_env["redis"].url)
    await asyncio.sleep(1)
    r.config_resetstat()
    gate = asyncio.Semaphore(100)

    async def join(i: int) -> Client:
        async with gate:
            return await open_ws(procs[i % 2], users[i][1], parse=False, retries=5)

    started = time.monotonic()
    counters = await asyncio.gather(*(join(i) for i in range(N)))
    joined = time.monotonic() - started
    while True:  # settle: until no socket has had a presence frame for QUIET seconds
        await asyncio.sleep(0.5)
        last = max(c.last_presence_at for c in counters)
        if time.monotonic() - last > QUIET or time.monotonic() - started > 90:
            break
    settled = last - started
    stats = command_stats(r)
    commands = sum(stats.values())  # INFO commandstats counts the commands a script runs, too
    scripts = sum(stats.get(k, 0) for k in ("evalsha", "eval"))  # round trips: the writes and the reads
    net_in = r.info("stats")["total_net_input_bytes"]

    everyone = {u["id"] for u, _ in users}
    for c in counters:
        assert not c.closed, "a storm socket was closed"
        assert c.last_presence is not None
        last = json.loads(c.last_presence)
        assert last["count"] == N and len(last["users"]) == min(N, 50)  # bounded, and everyone counted
        assert {u["id"] for u in last["users"]} <= everyone
    for proc in procs:  # the whole list, paged by display name
        assert (await asyncio.to_thread(site, proc))["count"] == N
        assert set(await asyncio.to_thread(page_ids, proc)) >= everyone
    frames = sorted(c.raw_presence for c in counters)
    received = sum(c.raw_bytes for c in counters)
    report = (f"storm N={N}: joined in {joined:.1f}s, settled at {settled:.1f}s; presence frames per socket "
              f"min {frames[0]} median {frames[len(frames) // 2]} max {frames[-1]} (mean {sum(frames) / N:.1f}); "
              f"{received / 1e6:.1f} MB of presence received; Redis commands {commands} = "
              f"{commands / N:.2f} per join (scripts {scripts / N:.2f} per join), {net_in / N:.0f} bytes sent to "
              f"Redis per join: {dict(sorted(stats.items(), key=lambda kv: -kv[1]))}")
    print("\n" + report)
    # Coalesced: about one frame per second of churn (plus the one on joining), never one per join.
    assert frames[-1] <= settled + 3, report
    assert frames[-1] < N / 10, report
    assert scripts / N < 1, report  # batched: one script per scope per flush, not one per join
    assert commands / N < 12, report  # ~7 per join inside the scripts, however many are present
    await asyncio.gather(*(c.close() for c in counters))
