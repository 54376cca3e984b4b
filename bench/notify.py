"""Coming back (issue 15): what notifications cost on the reply write path, and how fast they arrive.

    python -m bench.notify                       # 1,000 followers, 200 replies per case, 100 live sockets
    python -m bench.notify --replies 50 --sockets 40
    python -m bench.notify --cases followers --followers 64 --profile   # one case, py-spy on process A

Write path: replies posted one at a time into (a) a thread nobody follows but its author, (b) the same
with 20 @mentions of existing users per reply, (c) a thread with 1,000 followers (users and follow rows
made by SQL: every reply writes 1,000 notifications in its one INSERT … SELECT and publishes 1,000 user-
channel frames). Server CPU per reply (psutil, user+system of the serving process) and HTTP latency.

Delivery: `--sockets` signed-in followers of a thread, their sockets spread over two processes; a reply
on process A; the time from the reply's answer until each socket has its notification frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import websockets

from . import common
from .common import Env, Http, db_fetch, make_user, parley_proc, setup_forum, summary_ms


async def add_followers(db_url: str, thread_id: int, n: int, prefix: str) -> list[str]:
    """n users (made by SQL, they never sign in) following the thread; returns their usernames."""
    names = [f"{prefix}{i}" for i in range(n)]
    await db_fetch(db_url, "INSERT INTO users (username, display_name, password_hash)"
                           " SELECT unnest($1::text[]), 'Follower', 'x'", names)
    await db_fetch(db_url, "INSERT INTO thread_follows (user_id, thread_id, following)"
                           " SELECT id, $1, true FROM users WHERE username = any($2::text[])", thread_id, names)
    return names


async def replies(proc: Any, cookie: str, thread_id: int, n: int, body: str,
                  profile: str | None = None) -> dict[str, Any]:
    http = Http(proc.port, cookie)
    lat = []
    # py-spy for about the length of the case (sequential replies: ~15 ms each on this machine)
    prof = common.Profile(proc.pid, profile, max(2.0, n * 0.015)) if profile else None
    cpu0 = proc.cpu()
    for i in range(n):
        t = time.perf_counter()
        st, out, _ = await http.request("POST", f"/api/threads/{thread_id}/posts", {"body": f"{body} ({i})"})
        assert st == 201, out
        lat.append((time.perf_counter() - t) * 1000)
    cpu = proc.cpu() - cpu0
    http.close()
    out = {**summary_ms(lat), "cpu_ms_per_reply": round(cpu / n * 1000, 2)}
    if prof is not None:
        out["profile"] = prof.finish()
    return out


async def delivery(a: Any, b: Any, cookie: str, thread_id: int, sockets: int, rounds: int) -> dict[str, Any]:
    users = [await make_user(a.port) for _ in range(sockets)]
    for _, u in users:
        await db_fetch(a.env["DATABASE_URL"], "INSERT INTO thread_follows (user_id, thread_id, following)"
                                              " VALUES ($1, $2, true) ON CONFLICT DO NOTHING", u["id"], thread_id)
    conns = []
    for i, (c, _) in enumerate(users):
        port = (a if i % 2 == 0 else b).port
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws", additional_headers={
            "Cookie": f"parley_session={c}", "Origin": f"http://127.0.0.1:{port}"}, max_size=None, compression=None)
        conns.append(ws)
    await asyncio.sleep(1.0)
    lat: list[float] = []
    http = Http(a.port, cookie)
    for r in range(rounds):
        st, out, _ = await http.request("POST", f"/api/threads/{thread_id}/posts", {"body": f"delivery {r}"})
        assert st == 201, out
        answered = time.perf_counter()
        post_id = json.loads(out)["post"]["id"]

        async def one(ws: Any) -> float:
            while True:
                f = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if f.get("type") == "notification" and f["notification"]["post_id"] == post_id:
                    return (time.perf_counter() - answered) * 1000
        lat += await asyncio.gather(*(one(ws) for ws in conns))
    http.close()
    for ws in conns:
        await ws.close()
    return {**summary_ms(lat), "frames": len(lat)}


async def run(args: argparse.Namespace, env: Env) -> dict[str, Any]:
    a = env.add(parley_proc(env.db_url, name="parley-a"))
    b = env.add(parley_proc(env.db_url, name="parley-b"))
    forum = await setup_forum(a.port, env.db_url, threads=3)
    plain, mentioned, followed = forum["threads"]
    names = [f"men{i}" for i in range(20)]
    await db_fetch(env.db_url, "INSERT INTO users (username, display_name, password_hash)"
                               " SELECT unnest($1::text[]), 'Mentioned', 'x'", names)
    await add_followers(env.db_url, followed, args.followers, "fol")
    cookie, _ = await make_user(a.port)  # the replier: not the asker, so the asker is notified too
    cases = set(args.cases.split(","))
    prof = "notify-followers" if args.profile else None
    out: dict[str, Any] = {}
    if "plain" in cases:
        out["plain"] = await replies(a, cookie, plain, args.replies, "A plain reply")
    if "mentions" in cases:
        out["20 mentions"] = await replies(a, cookie, mentioned, args.replies,
                                           "Hello " + " ".join(f"@{n}" for n in names))
    if "followers" in cases:
        out[f"{args.followers} followers"] = await replies(a, cookie, followed, args.replies,
                                                           "A reply for everyone", prof)
    if "delivery" in cases:
        out["delivery"] = await delivery(a, b, cookie, plain, args.sockets, args.rounds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replies", type=int, default=200)
    ap.add_argument("--followers", type=int, default=1000)
    ap.add_argument("--sockets", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--cases", default="plain,mentions,followers,delivery", help="comma-separated subset")
    ap.add_argument("--profile", action="store_true", help="py-spy on process A during the followers case")
    args = ap.parse_args()
    env = Env(common.create_db())
    try:
        results = asyncio.run(run(args, env))
        for name, r in results.items():
            extra = f"  cpu {r['cpu_ms_per_reply']} ms/reply" if "cpu_ms_per_reply" in r else f"  {r['frames']} frames"
            print(f"{name:18s} p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms{extra}")
            if "profile" in r:
                print("  profile (inclusive %):", r["profile"].get("inclusive", r["profile"])[:25])
        print(f"results: {common.write_result('notify', {'args': vars(args), 'results': results})}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
