"""/healthz latency while three accounts post worst-case Markdown (issue 13, findings 1 and 4); with --flood N,
a normal post's latency while N accounts keep the render workers busy (issue 25, finding 8).

    python -m bench.render_storm --url http://127.0.0.1:8000 --database-url postgresql://… --seconds 20
    python -m bench.render_storm --url … --database-url … --seconds 20 --flood 6

Three signed-up accounts post, in a loop and at once, the bodies that were slowest or largest to render
(the fuzzer's finds and the issue's examples); meanwhile one client asks GET /healthz every 10 ms. Prints
the /healthz percentiles and, per body, the answers and the server's time to answer. Run the server with
PARLEY_RATE_LIMITS=off, or the posting limits end the storm early.

--flood N: N accounts each post, in a loop, one body that is slow but under the default 1 s budget
(`"http://a.b/(" * 1200`, ~0.3–0.6 s), while another account posts a normal 2,000-character answer (too
long to render on the loop, ~1 ms in a worker) every 0.5 s; prints that answer's time to answer.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx

BODIES = {
    "image brackets": "![" * 9995,
    "autolink parens": "http://a.b/(" * 1666,
    "reference link x3326": "[a]: http://x.io/" + "A" * 10000 + "\n\n" + "[a]" * 3326,
    "wide table": "|a" * 500 + "|\n" + "|-" * 500 + "|\n" + "x\n" * 4000,
}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


async def main(url: str, database_url: str, seconds: float) -> None:
    import asyncpg
    names = [f"storm{uuid.uuid4().hex[:8]}" for _ in range(4)]
    clients = [httpx.AsyncClient(base_url=url, timeout=120) for _ in names]
    for c, n in zip(clients, names, strict=True):
        r = await c.post("/api/users", json={"username": n, "password": "correct horse battery"})
        r.raise_for_status()
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE users SET is_moderator = true WHERE username = $1", names[0])
    await conn.close()
    slug = f"storm-{uuid.uuid4().hex[:8]}"
    (await clients[0].post("/api/categories", json={"slug": slug, "name": "Storm"})).raise_for_status()
    r = await clients[0].post("/api/threads", json={"category": slug, "title": "storm", "body": "go"})
    tid = r.json()["thread"]["id"]
    stop = time.monotonic() + seconds
    health: list[float] = []
    answers: dict[str, Counter[int]] = {k: Counter() for k in BODIES}
    times: dict[str, list[float]] = {k: [] for k in BODIES}

    async def poster(c: httpx.AsyncClient, offset: int) -> None:
        keys = list(BODIES)
        i = offset
        while time.monotonic() < stop:
            name = keys[i % len(keys)]
            i += 1
            t = time.perf_counter()
            r = await c.post(f"/api/threads/{tid}/posts", json={"body": BODIES[name]})
            times[name].append(time.perf_counter() - t)
            answers[name][r.status_code] += 1

    async def prober() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            while time.monotonic() < stop:
                t = time.perf_counter()
                await c.get("/healthz")
                health.append(time.perf_counter() - t)
                await asyncio.sleep(0.01)

    await asyncio.gather(prober(), *(poster(c, i) for i, c in enumerate(clients[1:])))
    ms = [h * 1000 for h in health]
    print(f"/healthz: n={len(ms)} p50={pct(ms, 50):.1f} ms p90={pct(ms, 90):.1f} ms "
          f"p99={pct(ms, 99):.1f} ms max={max(ms):.1f} ms")
    for name in BODIES:
        print(f"  {name:22} answers {dict(answers[name])} median {pct(times[name], 50) * 1000:.0f} ms")
    for c in clients:
        await c.aclose()


SLOW_ALLOWED = "http://a.b/(" * 1200
_WORDS = "the quick brown fox jumps over a lazy dog while we talk about sourdough bread ovens and flour".split()
NORMAL = " ".join(_WORDS[(i * 7) % len(_WORDS)] for i in range(400))[:2000]


async def flood(url: str, database_url: str, seconds: float, accounts: int) -> None:
    import asyncpg
    names = [f"flood{uuid.uuid4().hex[:8]}" for _ in range(accounts + 2)]
    clients = [httpx.AsyncClient(base_url=url, timeout=120) for _ in names]
    for c, n in zip(clients, names, strict=True):
        (await c.post("/api/users", json={"username": n, "password": "correct horse battery"})).raise_for_status()
    conn = await asyncpg.connect(database_url)
    await conn.execute("UPDATE users SET is_moderator = true WHERE username = $1", names[0])
    await conn.close()
    slug = f"flood-{uuid.uuid4().hex[:8]}"
    (await clients[0].post("/api/categories", json={"slug": slug, "name": "Flood"})).raise_for_status()
    r = await clients[0].post("/api/threads", json={"category": slug, "title": "flood", "body": "go"})
    tid = r.json()["thread"]["id"]
    normal, flooders = clients[1], clients[2:]
    assert len(NORMAL) > 1024  # not rendered on the loop: it needs a worker
    stop = time.monotonic() + seconds
    times: list[float] = []
    flood_answers: Counter[int] = Counter()
    flood_times: list[float] = []

    async def flooder(c: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            r = await c.post(f"/api/threads/{tid}/posts", json={"body": SLOW_ALLOWED})
            flood_times.append(time.perf_counter() - t)
            flood_answers[r.status_code] += 1

    async def poster() -> None:
        await asyncio.sleep(2)  # the flood first
        while time.monotonic() < stop:
            t = time.perf_counter()
            r = await normal.post(f"/api/threads/{tid}/posts", json={"body": NORMAL})
            assert r.status_code == 201, r.text[:200]
            times.append(time.perf_counter() - t)
            await asyncio.sleep(0.5)

    await asyncio.gather(poster(), *(flooder(c) for c in flooders))
    ms = [x * 1000 for x in times]
    print(f"normal post ({len(NORMAL)} chars) under a {accounts}-account flood: n={len(ms)} p50={pct(ms, 50):.0f} ms "
          f"p90={pct(ms, 90):.0f} ms max={max(ms):.0f} ms")
    print(f"  flood posts: answers {dict(flood_answers)} median {pct(flood_times, 50) * 1000:.0f} ms")
    for c in clients:
        await c.aclose()


def cli(argv: Any = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--flood", type=int, default=0, help="N accounts flood slow-but-allowed bodies (finding 8)")
    a = p.parse_args(argv)
    if a.flood:
        asyncio.run(flood(a.url, a.database_url, a.seconds, a.flood))
    else:
        asyncio.run(main(a.url, a.database_url, a.seconds))


if __name__ == "__main__":
    cli()
