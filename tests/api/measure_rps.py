"""Requests per second for GET /api/threads/{id} and POST /api/threads/{id}/posts against a running server.

Not a test (pytest does not collect it). Start one server process with rate
limits off and the demo loaded, then run this, e.g.:

    DATABASE_URL=postgresql://postgres@127.0.0.1/parley_bench PARLEY_RATE_LIMITS=off parley demo
    DATABASE_URL=postgresql://postgres@127.0.0.1/parley_bench PARLEY_RATE_LIMITS=off parley serve --port 8750 &
    .venv/bin/python tests/api/measure_rps.py http://127.0.0.1:8750 --seconds 20 --clients 50

It uses `wrk` when installed (apt-get install wrk), else ~50 concurrent httpx
clients in one asyncio loop (the client then costs as much CPU as the server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import uuid

import httpx


def setup(url: str) -> tuple[int, int, str]:
    """(a thread to read, another to reply to, a session cookie of a fresh user)."""
    threads = httpx.get(url + "/api/threads").json()["threads"]
    assert len(threads) >= 2, "load the demo forum first (parley demo)"
    client = httpx.Client(base_url=url)
    r = client.post("/api/users", json={"username": f"bench{uuid.uuid4().hex[:8]}", "password": "bench password"})
    assert r.status_code == 201, r.text
    ids = sorted(t["id"] for t in threads)  # stable across runs: replies reorder the listing
    return ids[0], ids[-1], client.cookies["parley_session"]


def with_wrk(url: str, path: str, seconds: int, clients: int, cookie: str | None, body: str | None) -> float:
    lua = None
    cmd = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency"]
    if body is not None:
        lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        lua.write('wrk.method = "POST"\n'
                  f"wrk.body = {json.dumps(body)}\n"
                  'wrk.headers["Content-Type"] = "application/json"\n'
                  f'wrk.headers["Cookie"] = "parley_session={cookie}"\n')
        lua.close()
        cmd += ["-s", lua.name]
    out = subprocess.run([*cmd, url + path], capture_output=True, text=True, check=True).stdout
    print(out)
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
    return float(line.split()[1])


async def with_httpx(url: str, path: str, seconds: int, clients: int, cookie: str | None, body: str | None) -> float:
    done = 0
    errors = 0
    stop = time.perf_counter() + seconds
    cookies = {"parley_session": cookie} if cookie else None

    async def worker() -> None:
        nonlocal done, errors
        async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30) as c:
            while time.perf_counter() < stop:
                if body is None:
                    r = await c.get(path)
                else:
                    r = await c.post(path, content=body, headers={"content-type": "application/json"})
                done += 1
                errors += r.status_code >= 400
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    rate = done / (time.perf_counter() - start)
    print(f"{done} requests, {errors} errors, {rate:.0f} req/s")
    return rate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--httpx", action="store_true", help="use httpx even when wrk is installed")
    a = p.parse_args()
    read, write, cookie = setup(a.url)
    tool = "httpx" if a.httpx or not shutil.which("wrk") else "wrk"
    results = {}
    for name, path, cookie_, body in (
        ("GET /api/threads/{id}", f"/api/threads/{read}", None, None),
        ("POST /api/threads/{id}/posts", f"/api/threads/{write}/posts", cookie, '{"body": "A benchmark reply."}'),
    ):
        print(f"== {name} ({tool}, {a.clients} clients, {a.seconds} s)")
        if tool == "wrk":
            results[name] = with_wrk(a.url, path, a.seconds, a.clients, cookie_, body)
        else:
            results[name] = asyncio.run(with_httpx(a.url, path, a.seconds, a.clients, cookie_, body))
    for name, rate in results.items():
        print(f"{name}: {rate:.0f} req/s")


if __name__ == "__main__":
    main()
