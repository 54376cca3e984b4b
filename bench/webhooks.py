"""Webhooks (issue 31): deliveries/s of one process to a local receiver, and the write path's CPU with one
webhook subscribed vs none.

    python -m bench.webhooks                        # replies at 100/s for 10 s per phase, then the backlog
    python -m bench.webhooks --rate 200 --duration 20

Two parley processes on one database: W takes the replies and delivers nothing (PARLEY_WEBHOOK_WORKERS=0), so
its CPU is the write path's alone; D serves nothing and delivers (PARLEY_WEBHOOK_WORKERS=4). The receiver, a
process of its own, answers 204 and keeps nothing. Phases:

  A. replies only, no webhook: W's CPU per reply;
  B. one webhook subscribed to every event (D stopped): W's CPU per reply, now also queueing a delivery per
     event in the event's statement; the deliveries pile up;
  C. D starts: deliveries/s from its start until the last of B's is delivered, and D's CPU per delivery;
  A2. the webhook deleted, replies only again: A and A2 are the write path's own cost and its noise band.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import Any

from . import common
from .common import Env, parley_proc
from .mail import _collect, _writes

RECEIVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(status=204)
app = web.Application()
app.router.add_route('*', '/{tail:.*}', ok)
web.run_app(app, host='127.0.0.1', port=int(sys.argv[1]), access_log=None, print=None)
"""


async def _pending(db_url: str) -> tuple[int, int]:
    rows = await common.db_fetch(db_url, "SELECT count(*) FILTER (WHERE delivered_at IS NULL) AS p, count(*)"
                                         " FILTER (WHERE delivered_at IS NOT NULL) AS d FROM webhook_deliveries")
    return int(rows[0]["p"]), int(rows[0]["d"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=100, help="replies/s in phases A, B, A2")
    p.add_argument("--duration", type=float, default=10, help="seconds of replies per phase")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--name", default="webhooks")
    a = p.parse_args(argv)
    common.raise_nofile()
    port = common.free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    env = Env(common.create_db())
    try:
        writer = env.add(parley_proc(env.db_url, name="writer", PARLEY_WEBHOOK_WORKERS="0",
                                    PARLEY_DB_POOL_SIZE="8"))
        forum = asyncio.run(common.setup_forum(writer.port, env.db_url, a.threads))
        cookies = [asyncio.run(common.make_user(writer.port))[0] for _ in range(16)]
        rows: list[dict[str, Any]] = []

        def replies(phase: str) -> dict[str, Any]:
            cpu0, pg0 = writer.cpu(), common.postgres_cpu()
            running, _ = _writes(writer.port, cookies, forum["threads"], a.rate, a.duration)
            lat, codes, _ = _collect(running)
            cpu, pg = writer.cpu() - cpu0, common.postgres_cpu() - pg0
            ok = codes.get("201", 0)
            return {"phase": phase, "replies": ok, **common.summary_ms(list(lat)),
                    "us_cpu_per_reply": cpu / ok * 1e6 if ok else None,
                    "us_pg_cpu_per_reply": pg / ok * 1e6 if ok else None, "codes": codes}

        _collect(_writes(writer.port, cookies, forum["threads"], a.rate, 2)[0])  # warm-up
        rows.append(replies("A: no webhook"))
        asyncio.run(common.db_fetch(
            env.db_url, "INSERT INTO webhooks (url, events, secret) VALUES ($1, $2, 'YmVuY2gtc2VjcmV0LWJ5dGVz')",
            f"http://127.0.0.1:{port}/hook",
            ["thread.created", "post.created", "post.edited", "post.deleted", "vote.changed", "thread.updated"]))
        rows.append(replies("B: one webhook (queued, not sent)"))
        backlog, _ = asyncio.run(_pending(env.db_url))
        deliverer = env.add(parley_proc(env.db_url, name="deliverer", PARLEY_WEBHOOK_ALLOW_PRIVATE="on",
                                        PARLEY_WEBHOOK_WORKERS="4", PARLEY_DB_POOL_SIZE="8"))
        cpu0, t0 = deliverer.cpu(), time.perf_counter()
        while asyncio.run(_pending(env.db_url))[0] > 0:
            time.sleep(0.1)
        elapsed, cpu = time.perf_counter() - t0, deliverer.cpu() - cpu0
        rows.append({"phase": "C: deliver the backlog", "deliveries": backlog, "per_s": backlog / elapsed,
                     "us_cpu_per_delivery": cpu / backlog * 1e6 if backlog else None, "elapsed_s": elapsed})
        deliverer.stop()
        asyncio.run(common.db_fetch(env.db_url, "DELETE FROM webhooks"))
        rows.append(replies("A2: no webhook (after)"))
        print(common.table(rows, [("phase", "phase"), ("replies", "replies"), ("p50_ms", "p50 ms"),
                                  ("p99_ms", "p99 ms"), ("us_cpu_per_reply", "writer µs CPU/reply"),
                                  ("us_pg_cpu_per_reply", "postgres µs CPU/reply"), ("deliveries", "deliveries"),
                                  ("per_s", "deliveries/s"), ("us_cpu_per_delivery", "deliverer µs CPU/delivery")]))
        result = {"args": vars(a), "machine": common.machine(), "rows": rows}
        print(f"→ {common.write_result(a.name, result).relative_to(common.ROOT)}")
        return result
    finally:
        env.close()
        receiver.terminate()
        receiver.wait(10)


if __name__ == "__main__":
    main()
