"""Fan-out: W watchers on a hot thread, R replies/s posted over HTTP, post→delivery measured per frame.

    python -m bench.fanout --watchers 1000 --rate 100 --duration 20 --target parley
    python -m bench.fanout -W 1000 -R 20 -D 20 --target both --poster separate   # CPU/frame vs reference
    python -m bench.fanout -W 10000 -R 5 -D 20 --probe                            # + GET p99 meanwhile
    python -m bench.fanout --watchers 1000 --rate 100 --duration 30 --slow-pct 1 --body 2000        # slow consumers

Starts its own database, `parley serve` (the measured process), optionally a second parley process
that takes the posts (`--poster separate`: the measured process then does only fan-out) and the
reference server (bench/reference_server.py) subscribed to the same Redis channel in the same run.
Prints a table and writes bench/results/fanout-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from array import array
from typing import Any

from . import common
from .common import Env, Http, parley_proc, reference_proc, summary_ms
from .loadgen import Pool, spread

COLS = [("target", "target"), ("watchers", "W"), ("rate", "R/s"), ("offered_per_s", "offered/s"),
        ("delivered_per_s", "delivered/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms"),
        ("spread_p99_ms", "spread p99"), ("lost", "undelivered"), ("dups", "dup"),
        ("out_of_order", "reordered"), ("cpu_s", "CPU s"),
        ("us_per_frame", "µs CPU/frame"),
        ("peak_rss_mib", "peak RSS MiB")]


class Sampler(threading.Thread):
    """RSS of the measured processes every 0.25 s: the peak during the run."""

    def __init__(self, procs: dict[str, common.Proc]) -> None:
        super().__init__(daemon=True)
        self.procs = procs
        self.peak = {k: 0 for k in procs}
        self.stop_ev = threading.Event()

    def run(self) -> None:
        while not self.stop_ev.is_set():
            for k, p in self.procs.items():
                try:
                    self.peak[k] = max(self.peak[k], p.rss())
                except Exception:
                    pass
            self.stop_ev.wait(0.25)


async def post_loop(port: int, cookie: str, threads: list[int], rate: float, duration: float, body_size: int,
                    conns: int = 16) -> dict[str, Any]:
    """Open loop: reply i is due at t0 + i/rate, whatever happened to the earlier ones."""
    pool: asyncio.Queue[Http] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(Http(port, cookie))
    lat: list[float] = []
    errors: dict[str, int] = {}
    filler = (" lorem ipsum dolor sit amet" * (body_size // 27 + 1))[:max(0, body_size - 40)]
    tasks = []

    async def one(i: int) -> None:
        http = await pool.get()
        try:
            t = time.time_ns()
            st, body, _ = await http.request("POST", f"/api/threads/{threads[i % len(threads)]}/posts",
                                             {"body": f"bench:{t} reply {i}{filler}"})
            lat.append((time.time_ns() - t) / 1e6)
            if st != 201:
                errors[str(st)] = errors.get(str(st), 0) + 1
        except Exception as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        finally:
            pool.put_nowait(http)

    n = int(rate * duration)
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    while not pool.empty():
        pool.get_nowait().close()
    return {"posted": n - sum(errors.values()), "errors": errors, "post_elapsed_s": elapsed,
            "http": summary_ms(lat)}


async def probe_loop(port: int, thread: int, stop: asyncio.Event, every: float = 0.05) -> dict[str, Any]:
    http = Http(port)
    lat: list[float] = []
    bad = 0
    while not stop.is_set():
        t = time.perf_counter()
        try:
            st, _, _ = await http.request("GET", f"/api/threads/{thread}?limit=20")
            bad += st != 200
        except Exception:
            bad += 1
            http.close()
        lat.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(every)
    http.close()
    return {**summary_ms(lat), "errors": bad}


def print_profile(profile: dict[str, Any], n: int = 15) -> None:
    print(f"profile ({profile.get('samples')} samples, {profile.get('file')}): top self time")
    for name, share in profile.get("self", [])[:n]:
        print(f"  {share:5.1f}%  {name}")
    print("top inclusive:")
    for name, share in profile.get("inclusive", [])[:n]:
        print(f"  {share:5.1f}%  {name}")


def wait_delivered(pool: Pool, final: dict[str, int], timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        progress: dict[str, int] = {}
        for part in pool.call("progress"):
            for k, v in part.items():
                progress[k] = min(progress.get(k, 1 << 62), v)
        if all(v >= final[k.split(":")[1]] for k, v in progress.items()):
            return True
        time.sleep(0.1)
    return False


def run(args: argparse.Namespace) -> dict[str, Any]:
    common.raise_nofile()
    server_cpus = {0} if args.pin else None
    load_cpus = {1} if args.pin else None
    if args.pin:
        common.pin(0, load_cpus)
    env = Env(common.create_db())
    pool: Pool | None = None
    try:
        extra = {"PARLEY_WS_COMPRESSION": "on"} if args.compression else {}
        targets: dict[int, common.Proc] = {}
        if args.target in ("parley", "both"):
            targets[0] = env.add(parley_proc(env.db_url, cpus=server_cpus, **extra))
        if args.target in ("reference", "both"):
            targets[1] = env.add(reference_proc(cpus=server_cpus))
        api = targets.get(0) or env.add(parley_proc(env.db_url, cpus=load_cpus, name="parley-poster"))
        poster = api
        if args.poster == "separate" and 0 in targets:
            poster = env.add(parley_proc(env.db_url, cpus=load_cpus, name="parley-poster"))
        forum = asyncio.run(common.setup_forum(api.port, env.db_url, args.threads + 1))
        hot, other = forum["threads"][:args.threads], forum["threads"][-1]

        # Watchers: W per target, spread round-robin over the hot threads and the load-generator processes.
        n_slow = int(args.watchers * args.slow_pct / 100)
        specs = []
        for t, proc in targets.items():
            for i in range(args.watchers):
                specs.append((t, proc.port, hot[i % len(hot)], None, i < n_slow, args.compression))
        nproc = args.procs or max(2, min(8, len(specs) // 1000 + 1))
        pool = Pool(nproc, load_cpus)
        t0 = time.time()
        res = pool.call("connect", [{"specs": s, "concurrency": args.connect_concurrency}
                                    for s in spread(specs, nproc)])
        connected = sum(r["ok"] for r in res)
        failed = sum(r["failed"] for r in res)
        connect_s = max(r["t_last"] or t0 for r in res) - t0
        print(f"connected {connected} sockets ({failed} failed) in {connect_s:.1f}s"
              + (f"; errors: {res[0]['errors']}" if failed else ""))
        time.sleep(args.settle)

        # Warm-up (caches, allocator, presence storm after the connects), then mark the baseline.
        if args.warmup > 0:
            asyncio.run(post_loop(poster.port, forum["cookie"], hot, min(args.rate, 20), args.warmup, args.body))
            final = {str(t): s for t, s in asyncio.run(common.db_fetch(
                env.db_url, "SELECT id, seq FROM threads WHERE id = any($1::bigint[])", hot))}
            wait_delivered(pool, final, 30)
        seqs = {str(t): s for t, s in asyncio.run(common.db_fetch(
            env.db_url, "SELECT id, seq FROM threads WHERE id = any($1::bigint[])", hot))}
        pool.call("mark", {"seqs": seqs})
        sampler = Sampler({str(k): v for k, v in targets.items()})
        sampler.start()
        cpu0 = {t: p.cpu() for t, p in targets.items()}
        load_cpu0 = pool.cpu()
        start = time.time()

        prof = common.Profile(targets[0].pid, args.name or "fanout", args.duration) \
            if args.profile and 0 in targets else None

        async def drive() -> tuple[dict[str, Any], dict[str, Any] | None]:
            stop = asyncio.Event()
            probe = asyncio.create_task(probe_loop(targets[0].port, other, stop)) \
                if args.probe and 0 in targets else None
            posted = await post_loop(poster.port, forum["cookie"], hot, args.rate, args.duration, args.body,
                                     conns=args.post_conns)
            stop.set()
            return posted, (await probe if probe else None)
        posted, probe = asyncio.run(drive())
        final = {str(t): s for t, s in asyncio.run(common.db_fetch(
            env.db_url, "SELECT id, seq FROM threads WHERE id = any($1::bigint[])", hot))}
        drained = wait_delivered(pool, final, args.drain)
        end = time.time()
        cpu1 = {t: p.cpu() for t, p in targets.items()}
        load_cpu = pool.cpu() - load_cpu0
        sampler.stop_ev.set()
        stats = pool.call("stats", {"final": final})
        slow_closes = asyncio.run(common.metric(targets[0].port, "parley_ws_slow_consumer_closes")) \
            if 0 in targets else None

        rows = []
        for t, proc in targets.items():
            parts = [s["targets"][t] for s in stats if t in s["targets"]]
            lat = array("f")
            seqs = array("q")
            for p in parts:
                lat.frombytes(p["lat"])
                seqs.frombytes(p["seqs"])
            # Spread: delivery time minus the first delivery of the same event to any watcher of this server,
            # i.e. the fan-out's own share of the latency, without the HTTP/database write path.
            first: dict[int, float] = {}
            for s, v in zip(seqs, lat):
                if v < first.get(s, 1e18):
                    first[s] = v
            spread_ = summary_ms([v - first[s] for s, v in zip(seqs, lat)])
            received = sum(p["received"] for p in parts)
            cpu = cpu1[t] - cpu0[t]
            row = {"target": "parley" if t == 0 else "reference", "watchers": args.watchers, "rate": args.rate,
                   "offered_per_s": args.watchers * args.rate, "delivered_per_s": received / (end - start),
                   **summary_ms(list(lat)), "spread_p50_ms": spread_["p50_ms"], "spread_p99_ms": spread_["p99_ms"],
                   "received": received,
                   "lost": sum(p["lost"] for p in parts), "dups": sum(p["dups"] for p in parts),
                   "gaps": sum(p["gaps"] for p in parts), "out_of_order": sum(p["out_of_order"] for p in parts),
                   "closed": sum(p["closed"] for p in parts),
                   "slow_sockets": sum(p["slow_sockets"] for p in parts),
                   "slow_closed": sum(p["slow_closed"] for p in parts),
                   "cpu_s": cpu, "us_per_frame": cpu / received * 1e6 if received else None,
                   "peak_rss_mib": sampler.peak[str(t)] / 2**20, "end_rss_mib": proc.rss() / 2**20}
            rows.append(row)
        if len(rows) == 2 and rows[0]["us_per_frame"] and rows[1]["us_per_frame"]:
            ratio = rows[0]["us_per_frame"] / rows[1]["us_per_frame"]
        else:
            ratio = None
        profile = prof.finish() if prof else None
        result = {"args": vars(args), "rows": rows, "profile": profile, "posting": posted, "probe_get": probe,
                  "drained": drained,
                  "connect_s": connect_s, "connected": connected, "connect_failed": failed,
                  "cpu_ratio_parley_over_reference": ratio, "loadgen_cpu_s": load_cpu, "window_s": end - start,
                  "closes": [s["closes"] for s in stats], "slow_consumer_closes_metric": slow_closes}
        print(common.table(rows, COLS))
        h = posted["http"]
        print(f"posted {posted['posted']} replies in {posted['post_elapsed_s']:.1f}s, errors {posted['errors']}; "
              f"HTTP p50 {common.fmt(h['p50_ms'])} ms p99 {common.fmt(h['p99_ms'])} ms; "
              f"load generators used {load_cpu:.1f} CPU s over {end - start:.1f}s; drained={drained}")
        if probe:
            print(f"GET /api/threads/{{other}} during fan-out: p50 {common.fmt(probe['p50_ms'])} ms "
                  f"p99 {common.fmt(probe['p99_ms'])} ms max {common.fmt(probe['max_ms'])} ms (n={probe['n']})")
        if ratio:
            print(f"CPU per delivered frame, parley / reference = {ratio:.2f}×")
        if args.slow_pct:
            print(f"slow sockets: {rows[0]['slow_sockets']}, closed {rows[0]['slow_closed']} "
                  f"(server metric 1013 closes: {slow_closes})")
        if profile:
            print_profile(profile)
        path = common.write_result(args.name or "fanout", result)
        print(f"→ {path.relative_to(common.ROOT)}")
        return result
    finally:
        if pool is not None:
            pool.shutdown()
        env.close(keep_db=args.keep_db)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--watchers", "-W", type=int, default=1000)
    p.add_argument("--rate", "-R", type=float, default=100, help="replies per second (total)")
    p.add_argument("--duration", "-D", type=float, default=20)
    p.add_argument("--target", choices=("parley", "reference", "both"), default="parley")
    p.add_argument("--poster", choices=("same", "separate"), default="same",
                   help="post through the measured process, or a second parley process")
    p.add_argument("--threads", type=int, default=1, help="hot threads (watchers spread over them)")
    p.add_argument("--procs", type=int, default=0, help="load-generator processes (default: by W)")
    p.add_argument("--slow-pct", type=float, default=0, help="%% of watchers that stop reading")
    p.add_argument("--body", type=int, default=200, help="reply body size (characters)")
    p.add_argument("--probe", action="store_true", help="GET another thread every 50 ms; report its p99")
    p.add_argument("--compression", action="store_true", help="PARLEY_WS_COMPRESSION=on, clients offer deflate")
    p.add_argument("--pin", action="store_true", help="servers on CPU 0, load generators and poster on CPU 1")
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--settle", type=float, default=2)
    p.add_argument("--drain", type=float, default=30, help="seconds to wait for delivery after the last post")
    p.add_argument("--post-conns", type=int, default=64)
    p.add_argument("--connect-concurrency", type=int, default=500)
    p.add_argument("--profile", action="store_true", help="py-spy record the measured parley process")
    p.add_argument("--name", default="", help="result file prefix")
    p.add_argument("--keep-db", action="store_true")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    main()
