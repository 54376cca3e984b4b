"""Idle memory per socket: RSS with N idle sockets minus the baseline, per server.

    python -m bench.idle --sockets 10000 --modes off,on,reference

`off`: parley with compression off (the default); `before`: the same on older code (`--before DIR`,
before/after in one run); `on`: PARLEY_WS_COMPRESSION=on and clients that offer permessage-deflate (so
it is negotiated); `reference`: bench/reference_server.py. Each mode gets a fresh server; the baseline
is taken after 20 warm-up sockets have connected and closed. `--subscribe` also subscribes every socket
to one quiet thread (the realistic idle reader).
"""

from __future__ import annotations

import argparse
import asyncio
import gc  # noqa: F401
import os
import time
from pathlib import Path
from typing import Any

from . import common
from .common import Env, parley_proc, reference_proc
from .loadgen import Pool, spread

COLS = [("mode", "server"), ("sockets", "sockets"), ("connected", "connected"), ("connect_s", "connect s"),
        ("cpu_us_per_socket", "server µs CPU/socket"), ("baseline_mib", "baseline MiB"),
        ("loaded_mib", "with sockets MiB"), ("kib_per_socket", "KiB/socket"), ("load", "load 1 min")]


def measure(env: Env, mode: str, n: int, subscribe: bool, nproc: int, profile: float = 0,
            before: str = "") -> dict[str, Any]:
    compress = mode == "on"
    if mode == "reference":
        proc = env.add(reference_proc())
        thread = 1 if subscribe else 0
    else:  # "before": the same as "off", on the older code in --before's checkout
        proc = env.add(parley_proc(env.db_url, cwd=Path(before) if mode == "before" else common.ROOT,
                                   PARLEY_WS_COMPRESSION="on" if compress else "off"))
        thread = 0
        if subscribe:
            forum = asyncio.run(common.setup_forum(proc.port, env.db_url, 1))
            thread = forum["threads"][0]
    pool = Pool(nproc)
    try:
        warm = [(0, proc.port, thread, None, False, compress)] * 20
        pool.call("connect", [{"specs": s, "concurrency": 20} for s in spread(warm, nproc)])
        pool.call("close")
        time.sleep(2)
        base = proc.rss()
        specs = [(0, proc.port, thread, None, False, compress)] * n
        prof = common.Profile(proc.pid, f"idle-{mode}-{n}", profile) if profile else None
        t0, cpu0 = time.time(), proc.cpu()
        res = pool.call("connect", [{"specs": s, "concurrency": 500} for s in spread(specs, nproc)])
        connected = sum(r["ok"] for r in res)
        errors = [e for r in res for e in r.get("errors", [])][:5]
        connect_s = max(r["t_last"] or t0 for r in res) - t0
        time.sleep(3)  # what the connects set off (presence frames to the room) is part of their cost
        cpu = proc.cpu() - cpu0
        loaded = proc.rss()
        if prof is not None:
            from .fanout import print_profile
            print_profile(prof.finish())
        pool.call("close")
    finally:
        pool.close()
        proc.stop()
    return {"mode": mode if mode in ("reference", "before") else f"parley compression {mode}", "sockets": n,
            "connected": connected, "connect_s": connect_s, "subscribed": subscribe,
            "cpu_us_per_socket": cpu / max(1, connected) * 1e6, "errors": errors,
            "baseline_mib": base / 2**20, "loaded_mib": loaded / 2**20,
            "kib_per_socket": (loaded - base) / 1024 / max(1, connected)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sockets", default="10000", help="sockets, or a comma list (1000,10000,20000: the growth)")
    p.add_argument("--modes", default="off,on,reference")
    p.add_argument("--subscribe", action="store_true")
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--profile", type=float, default=0, help="py-spy the server for this many s of the connects")
    p.add_argument("--before", default="", help="a checkout of older code for mode `before` (git archive main | "
                                                 "tar -x -C DIR): parley, compression off, as it was")
    p.add_argument("--rounds", type=int, default=1, help="measure every mode this many times, alternating")
    p.add_argument("--name", default="idle")
    a = p.parse_args(argv)
    common.raise_nofile()
    env = Env(common.create_db())
    rows = []
    try:
        for mode in [m for _ in range(a.rounds) for m in a.modes.split(",")]:
            for n in (int(x) for x in str(a.sockets).split(",")):
                rows.append(measure(env, mode.strip(), n, a.subscribe, a.procs, a.profile, a.before))
                rows[-1]["load"] = os.getloadavg()[0]
                print(common.table(rows[-1:], COLS).splitlines()[-1])
                if rows[-1]["errors"]:
                    print(f"  failed connects, e.g.: {rows[-1]['errors']}")
    finally:
        env.close()
    print(common.table(rows, COLS))
    result = {"args": vars(a), "rows": rows}
    print(f"→ {common.write_result(a.name, result).relative_to(common.ROOT)}")
    return result


if __name__ == "__main__":
    main()
