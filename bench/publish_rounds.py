"""CPU and wall time of one reply's publishes: its event and its notification batch as two PUBLISH round trips
(before) or as one pipelined publish_many (after: server/effects.py publish_events), on Parley's RedisBroker.

    python -m bench.publish_rounds                   # 20,000 replies per variant, 3 rounds, on CPU 0
    python -m bench.publish_rounds -n 50000 --rounds 5

Starts its own redis-server (bench.common.redis_url, or BENCH_REDIS_URL). One publisher, one reply at a time
(no other request in flight, so nothing else shares a round trip): the cost the write path's after_commit pays
per reply in the bench.writes workload (a response notifying 16 followers: one event, one batch). Rounds
alternate between variants. Prints a table and writes bench/results/publish_rounds-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from server.live.broker import RedisBroker

from . import common


class _Quiet:
    def on_message(self, channel: str, message: bytes) -> None: ...

    def on_reconnect(self) -> None: ...


async def _run(url: str, n: int, rounds: int) -> list[dict[str, Any]]:
    broker = RedisBroker(url)
    await broker.start(_Quiet())  # type: ignore[arg-type]
    event = ("parley:bench:thread:1", b'{"type":"event","thread":1,"seq":5,"name":"post.created","data":{'
             + b'"x":1,' * 200 + b'"y":2}}')  # ~1.3 KB, a short reply's post.created frame
    batch = ("parley:bench:users", b"b" * 600)  # a batch for 16 recipients is ~600 bytes
    rows = []
    for rnd in range(rounds):
        for variant in ("two round trips", "one publish_many"):
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                if variant == "two round trips":
                    await broker.publish(*event)
                    await broker.publish(*batch)
                else:
                    await broker.publish_many([event, batch])
            rows.append({"round": rnd + 1, "variant": variant,
                         "cpu_us": (time.process_time() - cpu) / n * 1e6,
                         "wall_us": (time.perf_counter() - wall) / n * 1e6})
    await broker.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=20000, help="replies per variant and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cpu", type=int, default=0, help="the CPU this process runs on (-1: any)")
    a = p.parse_args()
    url = common.redis_url()  # started before the pinning: redis-server does not inherit our CPU
    if a.cpu >= 0:
        os.sched_setaffinity(0, {a.cpu})
    rows = asyncio.run(_run(url, a.n, a.rounds))
    print("round | variant          | µs CPU per reply | µs wall per reply")
    for r in rows:
        print(f"{r['round']:5d} | {r['variant']:16s} | {r['cpu_us']:16.1f} | {r['wall_us']:17.1f}")
    print("→", common.write_result("publish_rounds", {"args": vars(a), "rows": rows}))


if __name__ == "__main__":
    main()
