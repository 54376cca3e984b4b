"""Guests' reads on a streaming replica: the primary's CPU per guest read without and with
PARLEY_DATABASE_REPLICA_URLS, and the lag a writer's reply shows to guests.

    python -m bench.replica                       # thread page and thread list, 8 s each, concurrency 16
    python -m bench.replica --duration 5 --concurrency 32 --writes 20

Starts its own PostgreSQL primary and a streaming replica of it (initdb + pg_basebackup -R in temporary
folders, as tests/replica/ does; as root, run as the `postgres` user), then one `parley serve` without
replicas and one with the replica, each read by guests in a closed loop (bench.reads' loader). CPU is read
from each postmaster's whole process tree (psutil) before and after, so the figures are per server. Two
servers on one 2-core machine: expect no gain in req/s — the point is where the work lands.

Writer lag: a signed-in writer posts N replies; after each, a guest (no cookie) polls the thread page
until the reply shows (replay + the page cache), and the writer reads it once (with its parley_wlsn
cookie: the primary, so it must already show).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from . import common
from .common import Http, parley_proc, summary_ms
from .reads import measure

sys.path.insert(0, str(common.ROOT / "tests"))
sys.path.insert(0, str(common.ROOT / "tests" / "replica"))


def tree_cpu(pgdata: Path) -> float:
    """CPU seconds of a postmaster and every backend under it."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    return common.tree_cpu(psutil.Process(pid))


async def writer_lag(port: int, cookie: str, thread_id: int, n: int) -> dict[str, Any]:
    writer, guest = Http(port, cookie), Http(port)
    lags, writer_saw = [], 0
    for i in range(n):
        body = f"lag probe {i} {time.time_ns()}"
        st, raw, headers = await writer.request("POST", f"/api/threads/{thread_id}/posts", {"body": body})
        assert st == 201, raw
        wlsn = [c.split(";")[0] for c in headers.get("set-cookie", "").split("\n") if c.startswith("parley_wlsn=")]
        writer.cookie = f"{cookie}; {wlsn[0]}" if wlsn else cookie  # sent as parley_session=…; parley_wlsn=…
        t0 = time.perf_counter()
        st, raw, _ = await writer.request("GET", f"/api/threads/{thread_id}?sort=newest&limit=5")
        writer_saw += body in raw.decode()
        while True:
            st, raw, _ = await guest.request("GET", f"/api/threads/{thread_id}?sort=newest&limit=5")
            if body in raw.decode():
                break
            await asyncio.sleep(0.002)
        lags.append((time.perf_counter() - t0) * 1000)
    writer.close()
    guest.close()
    return {"writes": n, "writer_saw_own_write": writer_saw, **{f"guest_lag_{k}": v for k, v in
                                                               summary_ms(lags).items() if k != "n"}}


async def _responses(port: int, cookie: str, thread_id: int, n: int) -> None:
    http = Http(port, cookie)
    for i in range(n):
        st, raw, _ = await http.request("POST", f"/api/threads/{thread_id}/posts", {"body": f"response {i}"})
        assert st == 201, raw
    http.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.replica", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--writes", type=int, default=20)
    p.add_argument("--warmup", type=float, default=3, help="seconds of the same reads before each measured run "
                   "(pools open their connections, prepared statements are made)")
    p.add_argument("--name", default="replica")
    a = p.parse_args(argv)
    a.responses, a.profile = 20, False  # what bench.reads' measure() reports beside each row
    from replica_support import Pair  # tests/replica: the private primary and its replica
    pair = Pair()
    rows: list[dict[str, Any]] = []
    lag: dict[str, Any] = {}
    try:
        data = tempfile.mkdtemp(prefix="parley-bench-replica-")
        base = {"PARLEY_DATA_DIR": data, "PARLEY_DEMO": "off"}
        forum: dict[str, Any] = {}
        for variant, extra in (("primary only", {}),
                               ("guests on the replica", {"PARLEY_DATABASE_REPLICA_URLS": pair.replica.url})):
            srv = parley_proc(pair.failover_url(), name="parley-replica", **base, **extra).start()
            try:
                if not forum:
                    forum = asyncio.run(common.setup_forum(srv.port, pair.primary.url, 1))
                    asyncio.run(_responses(srv.port, forum["cookie"], forum["threads"][0], 20))
                    time.sleep(1)  # the replica replays the set-up
                for label, path in (("thread page", f"/api/threads/{forum['threads'][0]}"),
                                    ("thread list", f"/api/categories/{forum['category']}/threads")):
                    measure(srv, None, path, argparse.Namespace(**{**vars(a), "duration": a.warmup}), label)
                    p0, r0 = tree_cpu(pair.primary.pgdata), tree_cpu(pair.replica.pgdata)
                    row = measure(srv, None, path, a, label)
                    p1, r1 = tree_cpu(pair.primary.pgdata), tree_cpu(pair.replica.pgdata)
                    ok = row["ok"] or 1
                    row.update(variant=variant, primary_us_per_read=(p1 - p0) / ok * 1e6,
                               replica_us_per_read=(r1 - r0) / ok * 1e6, loadavg=round(os.getloadavg()[0], 1))
                    rows.append(row)
                if extra:
                    lag = writer_lag_sync(srv.port, forum["cookie"], forum["threads"][0], a.writes)
            finally:
                srv.stop()
    finally:
        pair.destroy()
    print(common.table(rows, [("variant", "variant"), ("reader", "read"), ("req_per_s", "req/s"),
                              ("p99_ms", "p99 ms"), ("us_cpu_per_request", "parley µs CPU/read"),
                              ("primary_us_per_read", "primary µs CPU/read"),
                              ("replica_us_per_read", "replica µs CPU/read"), ("loadavg", "load 1 min")]))
    print("writer lag:", json.dumps(lag))
    result = {"args": vars(a), "rows": rows, "writer_lag": lag}
    print(f"→ {common.write_result(a.name, result).relative_to(common.ROOT)}")
    return result


def writer_lag_sync(port: int, cookie: str, thread_id: int, n: int) -> dict[str, Any]:
    return asyncio.run(writer_lag(port, cookie, thread_id, n))


if __name__ == "__main__":
    main()
