"""Write path: replies committed and published per second on one parley process, with HTTP latency.

    python -m bench.writes --rate 1000 --duration 10 --threads 8 --users 16      # open loop at 1000/s
    python -m bench.writes --rate 0 --concurrency 64 --duration 10               # closed loop: the ceiling
    python -m bench.writes --rate 200 --trust standard --spam-check              # trust on, a loopback checker
    python -m bench.writes --rate 500 --target both --pin --rounds 3              # Parley against its floor
    python -m bench.writes --rate 500 --target all --pin --rounds 2  # and the floor running Parley's statement

`--target both` runs Parley and the write floor (bench/write_floor.py: Starlette + markdown-it + nh3 + one
asyncpg transaction + one PUBLISH, nothing else) alternately under the same posters, each on its own database;
`--target statement` runs the floor with Parley's own reply statement (`write_floor.py --statement`: the same rows, none
of Parley's Python), and `--target all` runs Parley, that floor and the plain floor in turn, which splits Parley ÷
floor into what its rows cost (statement floor ÷ floor) and what its server does around them (Parley ÷ statement
floor). `--pin` puts the server on CPU 0 and the posters on CPU 1. PostgreSQL's CPU is read twice: the backends of the
run's own database (its share of the work, exactly) and every postgres process on the machine (noisy when other
work shares the server).

Posters run in separate processes (raw keep-alive HTTP/1.1), several users, several threads. Open loop:
request i is sent at t0 + i/rate whatever happened before (latency includes queueing, as a user sees
it). Counts 201s, checks the database holds exactly that many replies, and reads
parley_events_published from /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from array import array
from typing import Any

from . import common
from .common import Env, Http, parley_proc, summary_ms


def _poster(conn: Any, port: int, cookies: list[str], threads: list[int], rate: float, concurrency: int,
            duration: float, start_at: float, cpus: set[int] | None = None, warmup: float = 0.0) -> None:
    """Post for `warmup` + `duration` seconds from `start_at`; only the requests sent after the warm-up count."""
    common.pin(0, cpus)

    async def run() -> dict[str, Any]:
        lat = array("f")
        sent = array("d")
        codes: dict[str, int] = {}
        pool: asyncio.Queue[Http] = asyncio.Queue()
        for i in range(concurrency):
            pool.put_nowait(Http(port, cookies[i % len(cookies)]))

        async def one(i: int) -> None:
            http = await pool.get()
            t = time.perf_counter()
            counted = t - t0 >= warmup
            try:
                st, _, _ = await http.request("POST", f"/api/threads/{threads[i % len(threads)]}/posts",
                                              {"body": f"bench:{time.time_ns()} write {i} some text"})
                if counted:
                    codes[str(st)] = codes.get(str(st), 0) + 1
            except Exception as exc:
                if counted:
                    codes[type(exc).__name__] = codes.get(type(exc).__name__, 0) + 1
                http.close()
            if counted:
                lat.append((time.perf_counter() - t) * 1000)
                sent.append(time.time() - (time.perf_counter() - t))
            pool.put_nowait(http)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        t0 = time.perf_counter()
        if rate > 0:
            tasks = []
            for i in range(int(rate * (warmup + duration))):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        else:
            async def worker(k: int) -> None:
                i = k
                while time.perf_counter() - t0 < warmup + duration:
                    await one(i)
                    i += concurrency
            await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return {"lat": lat.tobytes(), "sent": sent.tobytes(), "codes": codes,
                "elapsed": time.perf_counter() - t0 - warmup}
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
def latency_shape(parts: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    """For bench/plot.py: the latency at each 0.1 percentile (0..100), and per 100 ms of send time the worst
    latency of the requests sent then (a stall shows as a spike)."""
    lat, sent = array("f"), array("d")
    for part in parts:
        lat.frombytes(part["lat"])
        sent.frombytes(part["sent"])
    ordered = sorted(lat)
    quantiles = [round(ordered[min(len(ordered) - 1, int(len(ordered) * q / 1000))], 3)
                 for q in range(1001)] if ordered else []
    worst: dict[int, float] = {}
    for ms, at in zip(lat, sent):
        k = int((at - t0) * 10)
        worst[k] = max(worst.get(k, 0.0), ms)
    return {"latency_quantiles_ms": quantiles,
            "latency_timeline": [[k / 10, round(v, 2)] for k, v in sorted(worst.items())]}


def stall_summary(path: Any, t0: float, t1: float) -> dict[str, Any]:
    """What bench/stallprobe saw between t0 and t1: gen-2 collections and event-loop stalls > 20 ms."""
    import json
    recs = []
    try:
        recs = [json.loads(line) for line in open(path) if line.strip()]
    except OSError:
        pass
    recs = [r for r in recs if t0 <= r["at"] <= t1]
    gen2 = [r for r in recs if r.get("gc") == 2]
    lags = [r for r in recs if "lag" in r]
    busy = [r for r in lags if r["cpu_ms"] >= 0.5 * r["lag"]]  # the process itself was busy, not descheduled
    return {"seconds": round(t1 - t0, 1), "gen2_collections": len(gen2),
            "gen2_cpu_ms_max": max((r["cpu_ms"] for r in gen2), default=0),
            "gen2_cpu_ms_sum": round(sum(r["cpu_ms"] for r in gen2), 1),
            "gen2_wall_ms_max": max((r["ms"] for r in gen2), default=0),
            "young_over_2ms_cpu": sum(1 for r in recs if r.get("gc") in (0, 1)),
            "loop_stalls_over_20ms": len(lags), "busy_stalls": len(busy),
            "busy_stall_ms_max": max((r["lag"] for r in busy), default=0),
            "busy_stalls_mostly_gc": sum(1 for r in busy if r["gc_ms"] >= 0.5 * r["cpu_ms"]),
            "busy_stall_cpu_ms_in_gc": round(sum(r["gc_ms"] for r in busy), 1),
            "busy_stall_cpu_ms": round(sum(r["cpu_ms"] for r in busy), 1),
            "gen2_objects_max": max((r.get("objects", 0) for r in recs if r.get("gc") == 2), default=0),
            "frozen": max((r.get("frozen", 0) for r in recs if r.get("gc") == 2), default=0),
            "gen2_at": [[round(r["at"] - t0, 2), r["cpu_ms"]] for r in gen2],
            "stalls_at": [[round(r["at"] - t0, 2), r["lag"], r["cpu_ms"], r["gc_ms"]] for r in lags]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.writes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=1000, help="replies/s offered (0 = closed loop)")
    p.add_argument("--concurrency", type=int, default=64, help="connections (in flight at most) in all")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=0,
                   help="seconds of posting at the same rate before the measured --duration (a fresh server's pool "
                        "fills and its statements are planned then); not counted in any figure")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--users", type=int, default=16)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--responses", type=int, default=0,
                   help="responses already in each thread before the run (inserted by SQL: the growth curve)")
    p.add_argument("--pool", type=int, default=0, help="PARLEY_DB_POOL_SIZE of the server (0: its default)")
    p.add_argument("--profile", action="store_true", help="py-spy record the server")
    p.add_argument("--profile-native", action="store_true",
                   help="py-spy record the server, paused per sample, with C frames: for bench.profile_ledger")
    p.add_argument("--stall-probe", action="store_true",
                   help="load bench/stallprobe into the server: its gen-2 collections and event-loop stalls")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                   help="an extra environment variable for the server (repeatable)")
    p.add_argument("--ab", metavar="NAME=VALUE",
                   help="before/after in one run: each round runs a server with NAME=VALUE (before), then one "
                        "without it (after), each on its own database; e.g. --ab PARLEY_GC_FREEZE=off")
    p.add_argument("--rounds", type=int, default=1, help="with --ab or --target both: pairs, alternating")
    p.add_argument("--target", choices=("parley", "floor", "statement", "both", "all"), default="parley",
                   help="the server under load: parley, the write floor (bench/write_floor.py), the floor running "
                        "Parley's reply statement, both (parley, floor) or all three alternately")
    p.add_argument("--pin", action="store_true", help="the server on CPU 0, the posters on CPU 1")
    p.add_argument("--floor-no-reset", action="store_true",
                   help="the floor skips asyncpg's reset round trip on release, as Parley does")
    p.add_argument("--floor-ordered", action="store_true",
                   help="the floor takes each seq under the thread's row lock to COMMIT, as Parley's ordering rule")
    p.add_argument("--name", default="writes")
    p.add_argument("--trust", choices=["open", "standard"], default="open", help="PARLEY_TRUST of the server")
    p.add_argument("--spam-check", action="store_true",
                   help="PARLEY_SPAM_CHECK_URL: a loopback Akismet-compatible checker (in this process) that says ham")
    p.add_argument("--established", action="store_true",
                   help="the posters have 10 reputation (not new accounts: no new-account limits, no spam check)")
    a = p.parse_args(argv)
    common.raise_nofile()
    base = dict(kv.split("=", 1) for kv in a.env)
    if a.pool:
        base["PARLEY_DB_POOL_SIZE"] = str(a.pool)
    variants: list[tuple[str, dict[str, str], str]] = [("", base, a.target)]
    if a.ab:
        k, _, v = a.ab.partition("=")
        variants = [(f"before ({a.ab})", {**base, k: v}, "parley"), ("after", base, "parley")] * a.rounds
    elif a.target == "both":
        variants = [("parley", base, "parley"), ("floor", base, "floor")] * a.rounds
    elif a.target == "all":
        variants = [("parley", base, "parley"), ("statement", base, "statement"), ("floor", base, "floor")] * a.rounds
    elif a.rounds > 1:
        variants = variants * a.rounds
    rows, shapes, profiles = [], [], []
    for label, extra, target in variants:
        row, shape, prof = _run_one(a, extra, label, target)
        rows.append(row)
        shapes.append(shape)
        profiles.append(prof)
    cols = [("variant", "variant"), ("offered_per_s", "offered/s"), ("concurrency", "conns"),
            ("responses", "responses before"), ("committed_per_s", "committed/s"), ("p50_ms", "p50 ms"),
            ("p99_ms", "p99 ms"), ("max_ms", "max ms"), ("stored", "stored"), ("published", "published"),
            ("us_cpu_per_reply", "server µs CPU/reply"), ("us_pg_db_cpu_per_reply", "PG backends µs CPU/reply"),
            ("us_pg_cpu_per_reply", "all PostgreSQL µs CPU/reply"),
            ("gen2", "gen-2 collections (CPU ms max)"), ("loadavg", "load 1 min")]
    result: dict[str, Any] = {"args": vars(a), "rows": rows, **shapes[0], "profile": profiles[0],
                              "profiles": profiles}
    if len(rows) > 1:
        print(common.table(rows, cols))
    if a.target in ("both", "all") and not a.ab:
        result["floor_ratios"] = floor_ratios(rows)
        for r in result["floor_ratios"]:
            print("round {round}: {pair}: server CPU {cpu:.2f}×, PG backends CPU {pg:.2f}×, "
                  "p50 {p50:.2f}×, p99 {p99:.2f}×, committed/s {rate:.2f}×".format(**r))
    if len(rows) > 1:
        result["shapes"] = shapes
    print(f"→ {common.write_result(a.name, result).relative_to(common.ROOT)}")
    return result


def floor_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per round (the rows from one parley row to the next): parley ÷ floor, and with a statement-floor row also
    parley ÷ statement floor and statement floor ÷ floor."""
    rounds: list[dict[str, dict[str, Any]]] = []
    for row in rows:
        if row["target"] == "parley" or not rounds:
            rounds.append({})
        rounds[-1][row["target"]] = row
    out = []
    for n, by in enumerate(rounds, 1):
        for top, bottom in (("parley", "floor"), ("parley", "statement"), ("statement", "floor")):
            if top not in by or bottom not in by:
                continue
            p, f = by[top], by[bottom]

            def q(k: str) -> float:
                return (p[k] / f[k]) if p.get(k) and f.get(k) else float("nan")
            out.append({"round": n, "pair": f"{top} ÷ {bottom}", "cpu": q("us_cpu_per_reply"),
                        "pg": q("us_pg_db_cpu_per_reply"), "p50": q("p50_ms"), "p99": q("p99_ms"),
                        "max": q("max_ms"), "rate": q("committed_per_s")})
    return out


def _run_one(a: argparse.Namespace, extra: dict[str, str], label: str, target: str = "parley"
             ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """One server on a fresh database under the posters: its row, latency shape and profile. For the floor, a
    parley server (not pinned) sets up the forum and the users first and is stopped before the floor starts."""
    server_cpus = {0} if a.pin else None
    load_cpus = {1} if a.pin else None
    env = Env(common.create_db())
    try:
        extra = dict(extra)
        extra["PARLEY_TRUST"] = a.trust
        if a.spam_check:
            extra["PARLEY_SPAM_CHECK_URL"] = _checker()
        probe_path = None
        if a.stall_probe:
            probe_path = common.RESULTS / f"stalls-{a.name}-{time.strftime('%Y%m%d-%H%M%S')}-{len(label)}.jsonl"
            extra["PARLEY_STALL_PROBE"] = str(probe_path)
            extra["PYTHONPATH"] = str(common.ROOT / "bench" / "stallprobe")
        srv = env.add(parley_proc(env.db_url, cpus=server_cpus if target == "parley" else None, **extra))
        forum = asyncio.run(common.setup_forum(srv.port, env.db_url, a.threads))
        users = [asyncio.run(common.make_user(srv.port)) for _ in range(a.users)]
        cookies = [c for c, _ in users]
        if a.established:
            asyncio.run(common.db_fetch(env.db_url, "UPDATE users SET reputation = 10 WHERE NOT is_moderator"))
        if a.responses:
            asyncio.run(_fill(env.db_url, forum["threads"], forum["user"]["id"], a.responses))
        if target in ("floor", "statement"):
            srv.stop()
            env.procs.remove(srv)
            authors = [u["id"] for _, u in users] if target == "statement" else users[0][1]["id"]
            srv = env.add(common.floor_proc(env.db_url, authors, cpus=server_cpus, pool=a.pool or 20,
                                              reset=not a.floor_no_reset, ordered=a.floor_ordered,
                                              statement=target == "statement"))
            pub0 = 0.0
        else:
            pub0 = asyncio.run(common.metric(srv.port, "parley_events_published"))
        ctx = mp.get_context("fork")
        start_at = time.time() + 1
        pipes, procs = [], []
        for k in range(a.procs):
            r, w = ctx.Pipe(False)
            pr = ctx.Process(target=_poster, args=(w, srv.port, cookies[k::a.procs] or cookies, forum["threads"],
                                                   a.rate / a.procs, max(1, a.concurrency // a.procs), a.duration,
                                                   start_at, load_cpus, a.warmup), daemon=True)
            pr.start()
            pipes.append(r)
            procs.append(pr)
        time.sleep(max(0.0, start_at + a.warmup - time.time()))  # the warm-up's requests and CPU do not count
        run_from = time.time()
        prof = (common.Profile(srv.pid, a.name, a.duration, native=a.profile_native)
                if a.profile or a.profile_native else None)
        backends = common.BackendCpu(env.db_url).start()
        assert srv.ps is not None
        sys0 = srv.ps.cpu_times().system
        cpu0, pg0 = srv.cpu(), common.postgres_cpu()
        parts = [r.recv() for r in pipes]
        cpu, pg = srv.cpu() - cpu0, common.postgres_cpu() - pg0
        sys_cpu = srv.ps.cpu_times().system - sys0
        pg_db = backends.stop()
        for pr in procs:
            pr.join(5)
        lat, codes, elapsed = common.merge_parts(parts)
        shape = latency_shape(parts, run_from)
        ok = codes.get("201", 0)
        stored = asyncio.run(common.db_fetch(
            env.db_url, "SELECT count(*) AS n, count(r.post_id) AS revisions FROM posts p"
                        " LEFT JOIN post_revisions r ON r.post_id = p.id AND r.revision = 1 WHERE p.kind = 'response'"))
        published = (asyncio.run(common.metric(srv.port, "parley_events_published")) - pub0
                     if target == "parley" else None)
        row = {"variant": label or None, "target": target, "offered_per_s": a.rate or None,
               "concurrency": a.concurrency,
               "responses": a.responses, "committed": ok,
               "committed_per_s": ok / elapsed, **summary_ms(list(lat)), "codes": codes,
               "stored": stored[0]["n"], "revisions": stored[0]["revisions"], "published": published, "cpu_s": cpu,
               "us_cpu_per_reply": cpu / ok * 1e6 if ok else None, "elapsed_s": elapsed,
               "server_system_share": round(sys_cpu / cpu, 3) if cpu else None,
               "us_pg_cpu_per_reply": pg / ok * 1e6 if ok else None,
               "us_pg_db_cpu_per_reply": pg_db / ok * 1e6 if ok else None,
               "loadavg": round(os.getloadavg()[0], 1), "loadavg_all": os.getloadavg()}
        print(common.table([row], [("variant", "variant"), ("offered_per_s", "offered/s"), ("concurrency", "conns"),
                                   ("responses", "responses before"),
                                   ("committed_per_s", "committed/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                                   ("max_ms", "max ms"), ("stored", "stored"), ("published", "published"),
                                   ("us_cpu_per_reply", "server µs CPU/reply"),
                                   ("us_pg_db_cpu_per_reply", "PG backends µs CPU/reply"),
                                   ("us_pg_cpu_per_reply", "all PostgreSQL µs CPU/reply"),
                                   ("loadavg", "load 1 min")]))
        print(f"status codes: {codes}")
        if probe_path is not None:
            row["stalls"] = stall_summary(probe_path, run_from, time.time())
            row["gen2"] = f"{row['stalls']['gen2_collections']} ({row['stalls']['gen2_cpu_ms_max']:.0f})"
            print("stall probe:", {k: v for k, v in row["stalls"].items() if not k.endswith("_at")})
            print("gen-2 collections (s into the run, CPU ms):", row["stalls"]["gen2_at"])
            print("busy loop stalls (s, late ms, CPU ms, of which gc):",
                  [r for r in row["stalls"]["stalls_at"] if r[2] >= 0.5 * r[1]])
        profile = prof.finish() if prof else None
        if profile:
            from .fanout import print_profile
            print_profile(profile)
        return row, shape, profile
    finally:
        env.close()


if __name__ == "__main__":
    main()
