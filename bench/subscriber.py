"""CPU per received pub/sub message: Parley's subscriber (server/live/subscriber.py) against redis-py's PubSub.

    python -m bench.subscriber                       # 50,000 messages of 300 bytes, 3 rounds per variant
    python -m bench.subscriber -n 100000 --size 1000 --rounds 5

Starts its own redis-server on a spare port. Each variant runs in a child process of its own, subscribed to
one measured channel among 100 others (a process watching many threads); the parent publishes N messages in
pipelines of 500 and the child reports its own CPU time (time.process_time) from the first message to the
last. Rounds alternate between variants, so the ratio between them is measured under the same load on the
machine. Prints a table and writes bench/results/subscriber-*.json.

Variants:
  parley          Subscriber: raw RESP parsed by hiredis, handler called per message
  redis-py        redis.asyncio PubSub.listen() (hiredis parser, redis-py's default when hiredis is installed)
  redis-py-pure   the same with redis-py's pure-Python RESP2 parser
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time
from typing import Any

from tests.support.ports import free_port

CHANNEL = "bench:sub:measured"
OTHERS = [f"bench:sub:other:{i}" for i in range(100)]
VARIANTS = ("parley", "redis-py", "redis-py-pure")


async def _child(variant: str, url: str, n: int) -> dict[str, Any]:
    got = 0
    start_cpu = start_wall = 0.0
    done = asyncio.Event()

    def on_message(channel: str, data: bytes) -> None:
        nonlocal got, start_cpu, start_wall
        if channel != CHANNEL:
            return
        got += 1
        if got == 1:
            start_cpu, start_wall = time.process_time(), time.perf_counter()
        elif got == n:
            done.set()

    if variant == "parley":
        from server.live.resp import endpoint
        from server.live.subscriber import Subscriber
        ready = asyncio.Event()
        sub = Subscriber(endpoint(url), on_message, ready.set)
        for ch in [CHANNEL, *OTHERS]:
            sub.add(ch)
        sub.start()
        await ready.wait()
        print("ready", flush=True)
        await done.wait()
        end_cpu, end_wall = time.process_time(), time.perf_counter()
        await sub.close()
    else:
        import redis.asyncio as aioredis
        kw: dict[str, Any] = {}
        if variant == "redis-py-pure":
            from redis._parsers import _AsyncRESP2Parser
            kw["parser_class"] = _AsyncRESP2Parser
        client = aioredis.Redis.from_url(url, **kw)
        ps = client.pubsub(ignore_subscribe_messages=True)
        await ps.subscribe(CHANNEL, *OTHERS)
        print("ready", flush=True)
        async for msg in ps.listen():
            ch = msg["channel"]
            on_message(ch.decode() if isinstance(ch, bytes) else ch, msg["data"])
            if done.is_set():
                break
        end_cpu, end_wall = time.process_time(), time.perf_counter()
        await ps.aclose()
        await client.aclose()
    return {"cpu_s": end_cpu - start_cpu, "wall_s": end_wall - start_wall, "messages": n - 1}


def _run_round(variant: str, url: str, n: int, payload: bytes) -> dict[str, Any]:
    import redis
    child = subprocess.Popen([sys.executable, "-m", "bench.subscriber", "--child", variant, "--url", url,
                              "-n", str(n)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    r = redis.Redis.from_url(url)
    time.sleep(0.2)  # the child is subscribed to all 101 channels before "ready"; let its loop settle
    for i in range(0, n, 500):
        pipe = r.pipeline(transaction=False)
        for _ in range(min(500, n - i)):
            pipe.publish(CHANNEL, payload)
        pipe.execute()
    out, _ = child.communicate(timeout=300)
    r.close()
    if child.returncode != 0 or not out.strip():
        # It fell behind past Redis's pub/sub output-buffer limit and was disconnected (messages lost).
        return {"failed": True}
    result = json.loads(out.strip().splitlines()[-1])
    result["us_per_msg"] = result["cpu_s"] / result["messages"] * 1e6
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--messages", type=int, default=50_000)
    ap.add_argument("--size", type=int, default=300, help="bytes per message (an event frame is ~300-1,000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, args.url, args.messages))), flush=True)
        return

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                               "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    payload = (b'{"type":"event","seq":1,"data":' + b"x" * args.size)[:args.size]
    variants = args.variants.split(",")
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    try:
        time.sleep(0.3)
        for _ in range(args.rounds):
            for v in variants:
                runs[v].append(_run_round(v, url, args.messages, payload))
    finally:
        server.kill()
        server.wait()

    base = min((x["us_per_msg"] for x in runs.get("parley", []) if not x.get("failed")), default=None)
    rows = []
    print(f"{'variant':<15} {'µs CPU/msg (best)':>18} {'median':>8} {'× parley':>9} {'msgs/s (best)':>14}")
    for v, all_runs in runs.items():
        rs = [x for x in all_runs if not x.get("failed")]
        if not rs:
            rows.append({"variant": v, "failed": True})
            print(f"{v:<15} disconnected by Redis in every round (fell behind its output-buffer limit)")
            continue
        us = sorted(x["us_per_msg"] for x in rs)
        rate = max(x["messages"] / x["wall_s"] for x in rs)
        ratio = us[0] / base if base else None
        rows.append({"variant": v, "us_per_msg_best": round(us[0], 2), "us_per_msg_median": round(us[len(us) // 2], 2),
                     "ratio_to_parley": round(ratio, 2) if ratio else None, "msgs_per_s_best": round(rate)})
        print(f"{v:<15} {us[0]:>18.2f} {us[len(us) // 2]:>8.2f} {ratio or 0:>9.2f} {rate:>14,.0f}")
    try:
        from . import common
        path = common.write_result("subscriber", {"messages": args.messages, "size": args.size,
                                                  "rounds": args.rounds, "machine": common.machine(),
                                                  "results": rows, "runs": runs})
        print(f"wrote {path}")
    except Exception as exc:  # the figures above are the result; the JSON is a convenience
        print(f"(no results file: {exc})")


if __name__ == "__main__":
    main()
