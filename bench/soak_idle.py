"""Soak: hold many idle websockets on one `parley serve` and sample its memory (not collected by pytest).

    DATABASE_URL=postgresql://postgres@127.0.0.1/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/soak_idle.py --minutes 10 [--sockets 2000] [--every 30]

It creates a database of its own on DATABASE_URL's server (dropped at the end), starts one server process
(Redis broker if REDIS_URL is set), opens the sockets (half signed in, as 50 users with many tabs; half
guests; each subscribed to one of 20 threads), keeps them idle (they answer pings) and samples the server's
RSS every --every seconds. At the end it checks every socket is still open and prints one JSON summary.
Exit status 1 if sockets were lost or RSS grew by more than --max-growth-mib after the connect phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the project's packages (tests.support: processes, databases)

import httpx  # noqa: E402
import psutil  # noqa: E402
import websockets  # noqa: E402

from tests.support.api import Api, unique  # noqa: E402
from tests.support.databases import create_database, drop_database, make_moderator  # noqa: E402
from tests.support.processes import ServerProcess  # noqa: E402


def rss_mib(pid: int) -> float:
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):  # --workers > 1
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / (1 << 20)


def gauge(url: str, name: str) -> float | None:
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--sockets", type=int, default=2000)
    ap.add_argument("--every", type=float, default=30.0, help="seconds between RSS samples")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--threads", type=int, default=20)
    ap.add_argument("--max-growth-mib", type=float, default=20.0)
    args = ap.parse_args()

    admin = os.environ.get("DATABASE_URL")
    if not admin:
        print("set DATABASE_URL to a PostgreSQL server this script may create a database on", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.sockets * 2 + 512)), hard))
    db = create_database(admin)
    try:
        return asyncio.run(soak(args, db))
    finally:
        drop_database(admin, db)


async def soak(args: argparse.Namespace, db: str) -> int:
    env = {"DATABASE_URL": db, "REDIS_URL": os.environ.get("REDIS_URL", ""), "PARLEY_RATE_LIMITS": "off",
           "PARLEY_MAX_CONNECTIONS_PER_IP": str(args.sockets + 1000),
           "PARLEY_SECRET": "soak-secret-0123456789abcdef", "PARLEY_DATA_DIR": f"/tmp/parley-soak-{os.getpid()}"}
    srv = ServerProcess(env).start(wait="/readyz" if env["REDIS_URL"] else "/healthz")
    sockets: list[Any] = []
    samples: list[dict[str, float]] = []
    t0 = time.monotonic()

    def sample(phase: str) -> None:
        s = {"t": round(time.monotonic() - t0, 1), "rss_mib": round(rss_mib(srv.proc.pid), 1), "phase": phase,
             "open": gauge(srv.url, "parley_ws_open_sockets")}
        samples.append(s)
        print(json.dumps(s), flush=True)

    try:
        mod = Api(srv.url).sign_up()
        make_moderator(db, mod.user["username"])
        slug = unique("soak-")
        assert mod.post("/api/categories", json={"slug": slug, "name": "Soak"}).status_code == 201
        tids = []
        for i in range(args.threads):
            r = mod.post("/api/threads", json={"category": slug, "title": f"Soak {i}", "body": "idle"})
            assert r.status_code == 201, r.text
            tids.append(r.json()["thread"]["id"])
        cookies = [Api(srv.url).sign_up().session_cookie for _ in range(args.users)]
        sample("baseline")

        async def open_one(i: int) -> None:
            headers = {"Cookie": f"parley_session={cookies[i % len(cookies)]}"} if i % 2 == 0 else {}
            ws = await websockets.connect(srv.ws_url, additional_headers=headers, compression=None,
                                          open_timeout=60, max_size=None)
            await ws.send(json.dumps({"type": "subscribe", "thread": tids[i % len(tids)]}))
            sockets.append(ws)

        sem = asyncio.Semaphore(100)

        async def guarded(i: int) -> None:
            async with sem:
                await open_one(i)

        await asyncio.gather(*(guarded(i) for i in range(args.sockets)))

        async def drain(ws: Any) -> None:  # read (and so answer pings); idle clients still get presence frames
            try:
                async for _ in ws:
                    pass
            except websockets.ConnectionClosed:
                pass
        readers = [asyncio.create_task(drain(ws)) for ws in sockets]
        await asyncio.sleep(3)
        sample("connected")
        end = time.monotonic() + args.minutes * 60
        while time.monotonic() < end:
            await asyncio.sleep(min(args.every, max(0.0, end - time.monotonic())))
            sample("idle")
        closed = sum(1 for ws in sockets if ws.close_code is not None)
        after = [s["rss_mib"] for s in samples if s["phase"] != "baseline"]
        growth = round(after[-1] - after[0], 1)
        summary = {"sockets": args.sockets, "minutes": args.minutes, "closed_by_server": closed,
                   "rss_baseline_mib": samples[0]["rss_mib"], "rss_connected_mib": after[0],
                   "rss_end_mib": after[-1], "rss_max_mib": max(after), "growth_while_idle_mib": growth,
                   "kib_per_socket": round((after[0] - samples[0]["rss_mib"]) * 1024 / args.sockets, 1)}
        print(json.dumps(summary), flush=True)
        for t in readers:
            t.cancel()
        return 0 if closed == 0 and growth <= args.max_growth_mib else 1
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        srv.stop(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
