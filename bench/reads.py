"""The read path: `GET /api/threads/{id}` of a thread with N responses at a fixed concurrency.

    python -m bench.reads                                   # 50 responses, concurrency 32, guests and signed in
    python -m bench.reads --responses 1000 --duration 5 --profile
    python -m bench.reads --pages                           # also the server-rendered page /t/{id} (HTML)

Closed loop: C keep-alive HTTP/1.1 connections (raw, cheap) in separate processes, each sending its
next request when the answer came. Prints req/s, latency and the server's CPU per request, for a guest
reader and for a signed-in reader (whose page also carries votes, following and unread).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from array import array
from typing import Any

from . import common
from .common import Env, Http, parley_proc, summary_ms


def _reader(conn: Any, port: int, cookie: str | None, path: str, concurrency: int, duration: float,
            start_at: float) -> None:
    async def run() -> dict[str, Any]:
        lat = array("f")
        codes: dict[str, int] = {}
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = time.perf_counter()

        async def worker() -> None:
            http = Http(port, cookie)
            while time.perf_counter() - t0 < duration:
                t = time.perf_counter()
                try:
                    st, _, _ = await http.request("GET", path)
                    codes[str(st)] = codes.get(str(st), 0) + 1
                except Exception as exc:
                    codes[type(exc).__name__] = codes.get(type(exc).__name__, 0) + 1
                    http.close()
                lat.append((time.perf_counter() - t) * 1000)
            http.close()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"lat": lat.tobytes(), "codes": codes, "elapsed": time.perf_counter() - t0}
    conn.send(asyncio.run(run()))


def measure(srv: Any, cookie: str | None, path: str, a: argparse.Namespace, label: str) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    start_at = time.time() + 0.5
    pipes, procs = [], []
    for _ in range(a.procs):
        r, w = ctx.Pipe(False)
        pr = ctx.Process(target=_reader, args=(w, srv.port, cookie, path, max(1, a.concurrency // a.procs),
                                               a.duration, start_at), daemon=True)
        pr.start()
        pipes.append(r)
        procs.append(pr)
    time.sleep(max(0.0, start_at - time.time()))
    prof = common.Profile(srv.pid, f"{a.name}-{label}", a.duration) if a.profile else None
    cpu0 = srv.cpu()
    parts = [r.recv() for r in pipes]
    cpu = srv.cpu() - cpu0
    for pr in procs:
        pr.join(5)
    lat, codes, elapsed = common.merge_parts(parts)
    ok = codes.get("200", 0)
    row = {"reader": label, "responses": a.responses, "concurrency": a.concurrency, "ok": ok,
           "req_per_s": ok / elapsed, **summary_ms(list(lat)), "codes": codes, "cpu_s": cpu,
           "us_cpu_per_request": cpu / ok * 1e6 if ok else None}
    if prof:
        row["profile"] = prof.finish()
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--responses", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=8)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="py-spy record the server")
    p.add_argument("--name", default="reads")
    p.add_argument("--pages", action="store_true",
                   help="also GET /t/{id}, the page crawlers read (HTML from the same kept page)")
    a = p.parse_args(argv)
    common.raise_nofile()
    env = Env(common.create_db())
    try:
        srv = env.add(parley_proc(env.db_url))
        forum = asyncio.run(common.setup_forum(srv.port, env.db_url, 1))
        tid = forum["threads"][0]

        async def fill() -> str:
            cookie, _ = await common.make_user(srv.port)
            http = Http(srv.port, forum["cookie"])
            for i in range(a.responses):
                st, body, _ = await http.request("POST", f"/api/threads/{tid}/posts",
                                                 {"body": f"Response {i}: a paragraph of ordinary length that "
                                                          f"says something about kettles and tea, number {i}."})
                assert st == 201, body
            http.close()
            return cookie
        reader_cookie = asyncio.run(fill())
        path = f"/api/threads/{tid}"
        rows = [measure(srv, None, path, a, "guest"), measure(srv, reader_cookie, path, a, "signed-in")]
        if a.pages:
            rows += [measure(srv, None, f"/t/{tid}", a, "guest page"),
                     measure(srv, reader_cookie, f"/t/{tid}", a, "signed-in page")]
        print(common.table(rows, [("reader", "reader"), ("responses", "responses"), ("concurrency", "conns"),
                                  ("req_per_s", "req/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                                  ("us_cpu_per_request", "server µs CPU/req")]))
        for row in rows:
            print(f"{row['reader']}: status codes {row['codes']}")
            if row.get("profile"):
                from .fanout import print_profile
                print_profile(row["profile"])
        print(f"→ {common.write_result(a.name, {'args': vars(a), 'rows': rows}).relative_to(common.ROOT)}")
        return {"rows": rows}
    finally:
        env.close()


if __name__ == "__main__":
    main()
