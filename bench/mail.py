"""Mail: 10,000 notification mails due at once against a local aiosmtpd sink (issue 27).

    python -m bench.mail                       # 10,000 mails, replies at 100/s for 10 s before and during
    python -m bench.mail --mails 2000 --rate 50 --duration 5     # quicker

One parley process sends to an aiosmtpd sink in a process of its own (it keeps nothing). Three phases on
the same server:

  A. replies only (open loop at --rate): the write path's p99 and server CPU per reply, no mail;
  C. --mails notifications made due at once (users with verified addresses, inserted by SQL), no other load:
     mails/s from the first due to the last marked sent, and server CPU per mail (notification worker:
     batching, Jinja2, the outbox row; sender: claim, SMTP, mark sent);
  B. another --mails due at once while replies run again at --rate: the write path's p99 meanwhile (the
     process's CPU then is the replies' and the mail workers' together);
  A2. replies only again, the outbox empty: A and A2 are the write path's own cost and its noise band.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import subprocess
import sys
import time
from typing import Any

from . import common
from .common import Env, parley_proc, summary_ms
from .writes import _poster

SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Sink:
    async def handle_DATA(self, server, session, envelope):
        return '250 2.0.0 OK'
c = Controller(Sink(), hostname='127.0.0.1', port=int(sys.argv[1]))
c.start()
sys.stdin.read()
c.stop()
"""


async def _due(db_url: str, prefix: str, n: int, thread: int, post: int, actor: int) -> None:
    """n members with verified addresses (notifications `away`, none online), each with one notification
    in `thread` made an hour ago: all due at once."""
    await common.db_fetch(db_url, """
        WITH u AS (
            INSERT INTO users (username, display_name, password_hash, email, email_verified)
            SELECT $1 || g, 'Mail bench ' || g, 'x', $1 || g || '@bench.example', true FROM generate_series(1, $2) g
            RETURNING id)
        INSERT INTO notifications (user_id, kind, actor_id, thread_id, post_id, created_at)
        SELECT id, 'followed', $3, $4, $5, now() - interval '1 hour' FROM u""", prefix, n, actor, thread, post)


async def _sent(db_url: str, prefix: str) -> int:
    rows = await common.db_fetch(db_url, "SELECT count(*) AS n FROM mail_outbox WHERE sent_at IS NOT NULL"
                                         " AND recipient LIKE $1 || '%'", prefix)
    return int(rows[0]["n"])


def _writes(port: int, cookies: list[str], threads: list[int], rate: float, duration: float,
            procs: int = 2) -> tuple[list[Any], float]:
    ctx = mp.get_context("fork")
    start_at = time.time() + 0.5
    pipes, workers = [], []
    for k in range(procs):
        r, w = ctx.Pipe(False)
        pr = ctx.Process(target=_poster, args=(w, port, cookies[k::procs] or cookies, threads, rate / procs, 32,
                                               duration, start_at), daemon=True)
        pr.start()
        pipes.append(r)
        workers.append(pr)
    return [(r, pr) for r, pr in zip(pipes, workers, strict=True)], start_at


def _collect(running: list[Any]) -> tuple[list[float], dict[str, int], float]:
    parts = [r.recv() for r, _ in running]
    for _, pr in running:
        pr.join(5)
    return common.merge_parts(parts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.mail", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mails", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=100, help="replies/s during phases A and B")
    p.add_argument("--duration", type=float, default=10, help="seconds of replies in A and B")
    p.add_argument("--name", default="mail")
    a = p.parse_args(argv)
    common.raise_nofile()
    sink_port = common.free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)], stdin=subprocess.PIPE)
    env = Env(common.create_db())
    try:
        srv = env.add(parley_proc(env.db_url, PARLEY_SMTP_URL=f"smtp://127.0.0.1:{sink_port}",
                                  PARLEY_MAIL_FROM="Bench <bench@bench.example>", PARLEY_MAIL_DELAY_SECONDS="1"))
        forum = asyncio.run(common.setup_forum(srv.port, env.db_url, 8))
        cookies = [asyncio.run(common.make_user(srv.port))[0] for _ in range(16)]
        qid = asyncio.run(common.db_fetch(env.db_url, "SELECT id FROM posts WHERE thread_id = $1",
                                          forum["threads"][0]))[0]["id"]
        rows = []

        def replies(phase: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
            cpu0 = srv.cpu()
            running, _ = _writes(srv.port, cookies, forum["threads"], a.rate, a.duration)
            lat, codes, elapsed = _collect(running)
            cpu = srv.cpu() - cpu0
            ok = codes.get("201", 0)
            return {"phase": phase, "replies": ok, **summary_ms(list(lat)), "cpu_s": cpu,
                    "us_cpu_per_reply": cpu / ok * 1e6 if ok else None, "codes": codes, **(extra or {})}

        _collect(_writes(srv.port, cookies, forum["threads"], a.rate, 2)[0])  # warm-up: first requests, caches
        rows.append(replies("A: replies, no mail"))

        # C: mails only.
        asyncio.run(_due(env.db_url, "mc", a.mails, forum["threads"][0], qid, forum["user"]["id"]))
        cpu0, t0 = srv.cpu(), time.perf_counter()
        while asyncio.run(_sent(env.db_url, "mc")) < a.mails:
            time.sleep(0.2)
        elapsed, cpu = time.perf_counter() - t0, srv.cpu() - cpu0
        rows.append({"phase": "C: mails, no replies", "mails": a.mails, "mails_per_s": a.mails / elapsed,
                     "cpu_s": cpu, "us_cpu_per_mail": cpu / a.mails * 1e6, "elapsed_s": elapsed})

        # B: mails while replies run.
        asyncio.run(_due(env.db_url, "mb", a.mails, forum["threads"][0], qid, forum["user"]["id"]))
        b = replies("B: replies while mails go")
        b["mails_during"] = asyncio.run(_sent(env.db_url, "mb"))
        rows.append(b)
        while asyncio.run(_sent(env.db_url, "mb")) < a.mails:
            time.sleep(0.2)
        # A again, the outbox empty: the write path's own cost, before and after, gives the noise band.
        rows.append(replies("A2: replies, no mail (after)"))
        print(common.table(rows, [("phase", "phase"), ("replies", "replies"), ("p50_ms", "p50 ms"),
                                  ("p99_ms", "p99 ms"), ("us_cpu_per_reply", "server µs CPU/reply"),
                                  ("mails", "mails"), ("mails_during", "mails sent meanwhile"),
                                  ("mails_per_s", "mails/s"), ("us_cpu_per_mail", "server µs CPU/mail")]))
        result = {"args": vars(a), "machine": common.machine(), "rows": rows}
        print(f"→ {common.write_result(a.name, result).relative_to(common.ROOT)}")
        return result
    finally:
        env.close()
        sink.communicate(b"", timeout=10)


if __name__ == "__main__":
    main()
