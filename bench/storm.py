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
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from . import common
from .common import Env, Http, parley_proc
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
    p.add_argument("--name", default="storm")
    a = p.parse_args(argv)
    common.raise_nofile()
    env = Env(common.create_db())
    pool = None
    try:
        extra = {"PARLEY_HISTORY_SECONDS": a.history_seconds} if a.history_seconds is not None else {}
        srv = env.add(parley_proc(env.db_url, **extra))
        poster = env.add(parley_proc(env.db_url, name="parley-poster"))
        forum = asyncio.run(common.setup_forum(poster.port, env.db_url, a.threads))
        threads = forum["threads"]
        pool = Pool(a.procs)
        specs = [(0, srv.port, threads[i % len(threads)], None, False, False) for i in range(a.sockets)]
        parts = spread(specs, a.procs)

        db0 = common.db_stats(env.db_url)
        prof = common.Profile(srv.pid, "storm", a.profile) if a.profile else None
        t0 = time.time()
        res = pool.call("connect", [{"specs": s, "concurrency": None} for s in parts])
        storm_s = max(r["t_last"] or t0 for r in res) - t0
        storm_ok = sum(r["ok"] for r in res)
        print(f"storm: {storm_ok}/{a.sockets} subscribed in {storm_s:.2f}s "
              f"({sum(r['failed'] for r in res)} failed {res[0]['errors'][:2]})")
        profile = prof.finish() if prof else None
        if profile:
            from .fanout import print_profile
            print_profile(profile)
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
        t1 = time.time()
        cpu1 = srv.cpu()
        res = pool.call("reconnect", [{"port": srv.port, "concurrency": None}] * a.procs)
        reconnect_s = max(r["t_last"] or t1 for r in res) - t1
        reconnect_cpu = srv.cpu() - cpu1  # the restarted process's CPU while every socket came back
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
        result = {
            "args": vars(a), "storm_s": storm_s, "storm_subscribed": storm_ok,
            "storm_statements": db1["xact_commit"] - db0["xact_commit"],
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
        for k in ("storm_s", "storm_statements", "stop_s", "reconnect_s", "reconnect_statements",
                  "statements_per_reconnect", "reconnect_cpu_s", "cpu_ms_per_reconnect", "replay_queries_metric",
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
