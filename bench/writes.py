"""Write path: replies committed and published per second on one parley process, with HTTP latency.

    python -m bench.writes --rate 1000 --duration 10 --threads 8 --users 16      # open loop at 1000/s
    python -m bench.writes --rate 0 --concurrency 64 --duration 10               # closed loop: the ceiling
    python -m bench.writes --rate 200 --trust standard --spam-check              # trust on, a loopback checker

Posters run in separate processes (raw keep-alive HTTP/1.1), several users, several threads. Open loop:
request i is sent at t0 + i/rate whatever happened before (latency includes queueing, as a user sees
it). Counts 201s, checks the database holds exactly that many replies, and reads
parley_events_published from /metrics.
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


def _poster(conn: Any, port: int, cookies: list[str], threads: list[int], rate: float, concurrency: int,
            duration: float, start_at: float) -> None:
    async def run() -> dict[str, Any]:
        lat = array("f")
        codes: dict[str, int] = {}
        pool: asyncio.Queue[Http] = asyncio.Queue()
        for i in range(concurrency):
            pool.put_nowait(Http(port, cookies[i % len(cookies)]))

        async def one(i: int) -> None:
            http = await pool.get()
            t = time.perf_counter()
            try:
                st, _, _ = await http.request("POST", f"/api/threads/{threads[i % len(threads)]}/posts",
                                              {"body": f"bench:{time.time_ns()} write {i} some text"})
                codes[str(st)] = codes.get(str(st), 0) + 1
            except Exception as exc:
                codes[type(exc).__name__] = codes.get(type(exc).__name__, 0) + 1
                http.close()
            lat.append((time.perf_counter() - t) * 1000)
            pool.put_nowait(http)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = time.perf_counter()
        if rate > 0:
            tasks = []
            for i in range(int(rate * duration)):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        else:
            async def worker(k: int) -> None:
                i = k
                while time.perf_counter() - t0 < duration:
                    await one(i)
                    i += concurrency
            await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return {"lat": lat.tobytes(), "codes": codes, "elapsed": time.perf_counter() - t0}
    conn.send(asyncio.run(run()))


async def _fill(db_url: str, threads: list[int], author: int, n: int) -> None:
    """n plain responses in each thread, straight into posts (the rows a reply reads and indexes: posts and
    the thread's response_count; no events, so they count as read), then ANALYZE like a live database."""
    await common.db_fetch(db_url, """
        WITH ins AS (
            INSERT INTO posts (thread_id, parent_id, kind, author_id, body, html)
            SELECT t, (SELECT id FROM posts WHERE thread_id = t AND kind = 'question'), 'response', $2,
                   'filler response ' || g, '<p>filler response ' || g || '</p>'
            FROM unnest($1::bigint[]) t, generate_series(1, $3) g
            RETURNING thread_id)
        UPDATE threads SET response_count = response_count + c.n
        FROM (SELECT thread_id, count(*) AS n FROM ins GROUP BY thread_id) c WHERE threads.id = c.thread_id
        RETURNING threads.id""", threads, author, n)
    await common.db_fetch(db_url, "ANALYZE")


def _checker() -> str:
    """A loopback Akismet-compatible checker in a thread of this process that calls everything ham; its URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ham(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real checker's

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-length", "5")
            self.end_headers()
            self.wfile.write(b"false")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ham)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/1.1/comment-check"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.writes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=1000, help="replies/s offered (0 = closed loop)")
    p.add_argument("--concurrency", type=int, default=64, help="connections (in flight at most) in all")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--users", type=int, default=16)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--responses", type=int, default=0,
                   help="responses already in each thread before the run (inserted by SQL: the growth curve)")
    p.add_argument("--pool", type=int, default=0, help="PARLEY_DB_POOL_SIZE of the server (0: its default)")
    p.add_argument("--profile", action="store_true", help="py-spy record the server")
    p.add_argument("--name", default="writes")
    p.add_argument("--trust", choices=["open", "standard"], default="open", help="PARLEY_TRUST of the server")
    p.add_argument("--spam-check", action="store_true",
                   help="PARLEY_SPAM_CHECK_URL: a loopback Akismet-compatible checker (in this process) that says ham")
    p.add_argument("--established", action="store_true",
                   help="the posters have 10 reputation (not new accounts: no new-account limits, no spam check)")
    a = p.parse_args(argv)
    common.raise_nofile()
    env = Env(common.create_db())
    try:
        extra = {"PARLEY_TRUST": a.trust, **({"PARLEY_DB_POOL_SIZE": str(a.pool)} if a.pool else {})}
        if a.spam_check:
            extra["PARLEY_SPAM_CHECK_URL"] = _checker()
        srv = env.add(parley_proc(env.db_url, **extra))
        forum = asyncio.run(common.setup_forum(srv.port, env.db_url, a.threads))
        cookies = [asyncio.run(common.make_user(srv.port))[0] for _ in range(a.users)]
        if a.established:
            asyncio.run(common.db_fetch(env.db_url, "UPDATE users SET reputation = 10 WHERE NOT is_moderator"))
        if a.responses:
            asyncio.run(_fill(env.db_url, forum["threads"], forum["user"]["id"], a.responses))
        pub0 = asyncio.run(common.metric(srv.port, "parley_events_published"))
        ctx = mp.get_context("fork")
        start_at = time.time() + 1
        pipes, procs = [], []
        for k in range(a.procs):
            r, w = ctx.Pipe(False)
            pr = ctx.Process(target=_poster, args=(w, srv.port, cookies[k::a.procs] or cookies, forum["threads"],
                                                   a.rate / a.procs, max(1, a.concurrency // a.procs), a.duration,
                                                   start_at), daemon=True)
            pr.start()
            pipes.append(r)
            procs.append(pr)
        time.sleep(max(0.0, start_at - time.time()))
        prof = common.Profile(srv.pid, a.name, a.duration) if a.profile else None
        cpu0, pg0 = srv.cpu(), common.postgres_cpu()
        parts = [r.recv() for r in pipes]
        cpu, pg = srv.cpu() - cpu0, common.postgres_cpu() - pg0
        for pr in procs:
            pr.join(5)
        lat, codes, elapsed = common.merge_parts(parts)
        ok = codes.get("201", 0)
        stored = asyncio.run(common.db_fetch(env.db_url, "SELECT count(*) AS n FROM posts WHERE kind = 'response'"))
        published = asyncio.run(common.metric(srv.port, "parley_events_published")) - pub0
        row = {"offered_per_s": a.rate or None, "concurrency": a.concurrency, "responses": a.responses,
               "committed": ok,
               "committed_per_s": ok / elapsed, **summary_ms(list(lat)), "codes": codes,
               "stored": stored[0]["n"], "published": published, "cpu_s": cpu,
               "us_cpu_per_reply": cpu / ok * 1e6 if ok else None, "elapsed_s": elapsed,
               "us_pg_cpu_per_reply": pg / ok * 1e6 if ok else None}
        print(common.table([row], [("offered_per_s", "offered/s"), ("concurrency", "conns"),
                                   ("responses", "responses before"),
                                   ("committed_per_s", "committed/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                                   ("max_ms", "max ms"), ("stored", "stored"), ("published", "published"),
                                   ("us_cpu_per_reply", "server µs CPU/reply"),
                                   ("us_pg_cpu_per_reply", "PostgreSQL µs CPU/reply")]))
        print(f"status codes: {codes}")
        result = {"args": vars(a), "rows": [row], "profile": prof.finish() if prof else None}
        if result["profile"]:
            from .fanout import print_profile
            print_profile(result["profile"])
        print(f"→ {common.write_result(a.name, result).relative_to(common.ROOT)}")
        return result
    finally:
        env.close()


if __name__ == "__main__":
    main()
