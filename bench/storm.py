"""Connect storm and reconnect-after-restart.

    python -m bench.storm --sockets 10000 --threads 10

1. N sockets connect and subscribe at once (no concurrency limit; spread over the load-generator
   processes and T threads): time until every one has its `subscribed`.
2. Replies are posted through a second parley process (the poster) and delivered.
3. The measured process is restarted (SIGTERM, start again on the same port); meanwhile more replies
   are posted through the poster. Every socket reconnects at once with `since` = the last seq it saw:
   time until all are subscribed again, the PostgreSQL statements this cost (pg_stat_database
   xact_commit delta for the bench database, read after the stats flush, and `parley_replay_queries`
   from /metrics), then more live replies; finally every socket must hold every seq exactly once.

`--reference` also storms the raw `websockets` peer (bench/reference_server.py) with the same count on
the same threads, in the same run, before Parley's storm (`--rounds R`: R storms of each, alternating,
Parley's last one kept for the restart): the ratio is the issue-33 target, and the peer's connect time
is the yardstick of issue 32's "time until all are live". `--pin` puts the servers on CPU 0 and the
load generators and the poster on CPU 1. `--no-restart` stops after the storms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

from . import common
from .common import Env, Http, parley_proc, reference_proc
from .fanout import wait_delivered
from .loadgen import Pool, spread


async def post_each(port: int, cookie: str, threads: list[int], per_thread: int) -> int:
    http = [Http(port, cookie) for _ in range(8)]
    ok = 0

    async def one(i: int, tid: int) -> None:
        nonlocal ok
        st, _, _ = await http[i % 8].request("POST", f"/api/threads/{tid}/posts",
                                              {"body": f"bench:{time.time_ns()} storm {i}"})
        ok += st == 201
    for r in range(per_thread):
        for k in range(0, len(threads), 8):
            await asyncio.gather(*(one(k + j, tid) for j, tid in enumerate(threads[k:k + 8])))
    for h in http:
        h.close()
    return ok


def seqs(env: Env, threads: list[int]) -> dict[str, int]:
    return {str(t): s for t, s in asyncio.run(common.db_fetch(
        env.db_url, "SELECT id, seq FROM threads WHERE id = any($1::bigint[])", threads))}


def storm(pool: Pool, port: int, target: int, threads: list[int], n: int, procs: int,
          proc: Any) -> dict[str, Any]:
    """N sockets connect and subscribe at once; the time until the last `subscribed`, the server's CPU."""
    specs = [(target, port, threads[i % len(threads)], None, False, False) for i in range(n)]
    cpu0, t0 = proc.cpu(), time.time()
    res = pool.call("connect", [{"specs": s, "concurrency": None} for s in spread(specs, procs)])
    wall = max(r["t_last"] or t0 for r in res) - t0
    time.sleep(1.0)  # what the connects set off (presence broadcasts) is part of their cost
    cpu = proc.cpu() - cpu0
    ok = sum(r["ok"] for r in res)
    return {"s": wall, "ok": ok, "failed": sum(r["failed"] for r in res),
            "errors": [e for r in res for e in r["errors"]][:2], "cpu_s": cpu,
            "cpu_us_per_socket": cpu / max(1, ok) * 1e6}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sockets", type=int, default=10000)
    p.add_argument("--threads", type=int, default=10)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--down-replies", type=int, default=3, help="replies per thread while the server is down")
    p.add_argument("--stats-wait", type=float, default=11, help="seconds for pg_stat counters to flush")
    p.add_argument("--profile", type=float, default=0, help="py-spy the server for this many s of the storm")
    p.add_argument("--history-seconds", default=None,
                   help="PARLEY_HISTORY_SECONDS for the measured process (0: every resume reads the database)")
    p.add_argument("--reference", action="store_true", help="storm the raw websockets peer too, same run")
    p.add_argument("--rounds", type=int, default=1, help="storms of each server (alternating) before the restart")
    p.add_argument("--pin", action="store_true", help="servers on CPU 0, load generators and poster on CPU 1")
    p.add_argument("--no-restart", action="store_true", help="only the storms: no restart, no resume")
    p.add_argument("--before", default="", help="a checkout of older code (git archive main | tar -x -C DIR): "
                                                 "its server is stormed too, each round (before/after in one run)")
    p.add_argument("--name", default="storm")
    a = p.parse_args(argv)
    common.raise_nofile()
    server_cpus = {0} if a.pin else None
    load_cpus = {1} if a.pin else None
    if a.pin:
        common.pin(0, load_cpus)
    load0 = os.getloadavg()
    env = Env(common.create_db())
    pool = None
    try:
        extra = {"PARLEY_HISTORY_SECONDS": a.history_seconds} if a.history_seconds is not None else {}
        srv = env.add(parley_proc(env.db_url, cpus=server_cpus, **extra))
        poster = env.add(parley_proc(env.db_url, cpus=load_cpus, name="parley-poster"))
        ref = env.add(reference_proc(cpus=server_cpus)) if a.reference else None
        before = (env.add(parley_proc(env.db_url, cpus=server_cpus, name="parley-before", cwd=Path(a.before)))
                  if a.before else None)
        forum = asyncio.run(common.setup_forum(poster.port, env.db_url, a.threads))
        threads = forum["threads"]
        pool = Pool(a.procs, load_cpus)
        rounds: list[dict[str, Any]] = []
        prof = None
        for r in range(a.rounds):
            row: dict[str, Any] = {"load": os.getloadavg()[0]}
            if ref is not None:
                row["reference"] = storm(pool, ref.port, 1, threads, a.sockets, a.procs, ref)
                pool.call("close", {"target": 1})
                time.sleep(1.0)
            if before is not None:
                row["before"] = storm(pool, before.port, 2, threads, a.sockets, a.procs, before)
                pool.call("close", {"target": 2})
                time.sleep(1.0)
            db0 = common.db_stats(env.db_url)
            if a.profile and r == a.rounds - 1:
                prof = common.Profile(srv.pid, "storm", a.profile)
            row["parley"] = storm(pool, srv.port, 0, threads, a.sockets, a.procs, srv)
            row["parley"]["statements"] = common.db_stats(env.db_url)["xact_commit"] - db0["xact_commit"]
            if "reference" in row:
                row["ratio"] = row["parley"]["s"] / max(1e-9, row["reference"]["s"])
                row["cpu_ratio"] = row["parley"]["cpu_s"] / max(1e-9, row["reference"]["cpu_s"])
            rounds.append(row)
            pr = row["parley"]
            line = (f"round {r + 1}: parley {pr['ok']}/{a.sockets} subscribed in {pr['s']:.2f}s, "
                    f"{pr['cpu_us_per_socket']:.0f} µs CPU/socket ({pr['failed']} failed {pr['errors']})")
            if "reference" in row:
                rf = row["reference"]
                line += (f"; peer {rf['ok']} in {rf['s']:.2f}s, {rf['cpu_us_per_socket']:.0f} µs CPU/socket; "
                         f"ratio {row['ratio']:.2f}× time, {row['cpu_ratio']:.2f}× CPU")
            if "before" in row:
                bf = row["before"]
                row["before_ratio"] = bf["s"] / max(1e-9, row["reference"]["s"]) if "reference" in row else None
                line += (f"; before {bf['ok']} in {bf['s']:.2f}s, {bf['cpu_us_per_socket']:.0f} µs CPU/socket"
                         + (f", {row['before_ratio']:.2f}× the peer" if row["before_ratio"] else ""))
            print(line + f" (load {row['load']:.1f})")
            if r < a.rounds - 1:
                pool.call("close", {"target": 0})
                time.sleep(1.0)
        storm_s, storm_ok = rounds[-1]["parley"]["s"], rounds[-1]["parley"]["ok"]
        profile = prof.finish() if prof else None
        if profile:
            from .fanout import print_profile
            print_profile(profile)
        if a.no_restart:
            result = {"args": vars(a), "rounds": rounds, "profile": profile, "load": [load0, os.getloadavg()]}
            print(f"→ {common.write_result(a.name, result).relative_to(common.ROOT)}")
            return result
        pool.call("mark", {"seqs": seqs(env, threads)})
        asyncio.run(post_each(poster.port, forum["cookie"], threads, 2))
        wait_delivered(pool, seqs(env, threads), 30)

        # Restart the measured process; post while it is down.
        t_stop = time.time()
        srv.stop()
        stop_s = time.time() - t_stop
        asyncio.run(post_each(poster.port, forum["cookie"], threads, a.down_replies))
        srv.start()
        time.sleep(a.stats_wait)
        db1 = common.db_stats(env.db_url)
        load_resume = os.getloadavg()[0]
        cpu1, pg1 = srv.cpu(), common.db_backend_cpu(env.db_url)
        t1 = time.time()
        res = pool.call("reconnect", [{"port": srv.port, "concurrency": None}] * a.procs)
        reconnect_s = max(r["t_last"] or t1 for r in res) - t1
        time.sleep(1.0)  # the presence broadcasts the resume set off
        pg2 = common.db_backend_cpu(env.db_url)
        resume_cpu = srv.cpu() - cpu1
        resume_pg_cpu = sum(v - pg1.get(pid, 0.0) for pid, v in pg2.items())  # this database's backends only
        reconnect_cpu = resume_cpu  # the restarted process's CPU while every socket came back
        re_ok = sum(r["ok"] for r in res)
        replay_metric = asyncio.run(common.metric(srv.port, "parley_replay_queries"))
        history = {k: asyncio.run(common.metric(srv.port, name)) for k, name in (
            ("history_memory", 'parley_history_resumes_total{source="memory"}'),
            ("history_database", 'parley_history_resumes_total{source="database"}'),
            ("history_warm_reads", "parley_history_warm_reads"))}
        time.sleep(a.stats_wait)
        db2 = common.db_stats(env.db_url)
        print(f"reconnect: {re_ok} sockets subscribed again with since in {reconnect_s:.2f}s "
              f"({sum(r['failed'] for r in res)} failed)")
        asyncio.run(post_each(poster.port, forum["cookie"], threads, 2))
        final = seqs(env, threads)
        drained = wait_delivered(pool, final, 60)
        stats = pool.call("stats", {"final": final})
        if stats[0].get("debug"):
            print("DEBUG", stats[0]["debug"])
        tot = [s["targets"][0] for s in stats if 0 in s["targets"]]
        q = db2["xact_commit"] - db1["xact_commit"]
        ref_s = rounds[-1].get("reference", {}).get("s")
        result = {
            "args": vars(a), "rounds": rounds, "storm_s": storm_s, "storm_subscribed": storm_ok,
            "storm_statements": rounds[-1]["parley"]["statements"],
            "resume_cpu_us_per_socket": resume_cpu / max(1, re_ok) * 1e6,
            "resume_pg_cpu_us_per_socket": resume_pg_cpu / max(1, re_ok) * 1e6,
            "reference_connect_s": ref_s, "resume_vs_reference": reconnect_s / ref_s if ref_s else None,
            "load": [load0, load_resume, os.getloadavg()],
            "stop_s": stop_s, "reconnect_s": reconnect_s, "reconnected": re_ok,
            "reconnect_statements": q, "statements_per_reconnect": q / max(1, re_ok),
            "reconnect_cpu_s": reconnect_cpu, "cpu_ms_per_reconnect": reconnect_cpu * 1000 / max(1, re_ok),
            "statements_per_thread": q / len(threads),
            "replay_queries_metric": replay_metric, **history,
            "thread_events_scans": db2["thread_events_scans"] - db1["thread_events_scans"],
            "received": sum(t["received"] for t in tot), "lost": sum(t["lost"] for t in tot),
            "dups": sum(t["dups"] for t in tot), "gaps": sum(t["gaps"] for t in tot), "drained": drained,
            "closes": [s["closes"] for s in stats], "profile": profile,
        }
        for k in ("storm_s", "storm_statements", "stop_s", "reconnect_s", "reference_connect_s", "resume_vs_reference",
                  "reconnect_statements", "statements_per_reconnect", "reconnect_cpu_s", "cpu_ms_per_reconnect",
                  "resume_cpu_us_per_socket", "resume_pg_cpu_us_per_socket", "replay_queries_metric",
                  "history_memory", "history_database", "history_warm_reads", "thread_events_scans", "received",
                  "lost", "dups", "gaps", "drained"):
            print(f"  {k:28} {common.fmt(result[k], 3)}")
        print(f"→ {common.write_result(a.name, result).relative_to(common.ROOT)}")
        return result
    finally:
        if pool is not None:
            try:
                pool.call("close", timeout=60)
            except Exception:
                pass
            pool.close()
        env.close()


if __name__ == "__main__":
    main()
