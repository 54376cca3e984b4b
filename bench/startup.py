"""Start-up cost of a Parley process: CPU and wall time from spawn to a 200 on /healthz.

    python -m bench.startup [--starts N] [--import-runs N] [--pyc keep|compile|none] [--cwd DIR]

Each start spawns `python -m server serve --port P --workers 1` against one throw-away database
(migrated once beforehand, so the starts measure a start, not a migration), polls `/healthz` over a raw
socket every 20 ms (cheap, so the poller takes little of the two cores), then reads the user+system
CPU of the server's process tree (psutil), and again once it has settled (what the start left running, such
as a warm-up thread, is paid too), and stops it. Also times, as the test suite pays them: the CPU
of `python -c "import server.app"`, of `import server.cli` and of `python -m server migrate` on a
current database (each a child process; CPU from `resource.getrusage(RUSAGE_CHILDREN)`).
Prints medians and writes a JSON to bench/results/.

--pyc: `compile` writes the tree's .pyc files first (what tests/conftest.py does per run), `none` deletes
them, so every module of `server` is compiled from source at each start as under PYTHONDONTWRITEBYTECODE=1
with no .pyc written; `keep` (default) leaves the tree as it is. --cwd runs another checkout's `server`
(`git archive BASE | tar -x -C DIR`), for before/after in one session.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from bench import common
from tests.support.ports import free_port
from tests.support.processes import compile_tree


def _healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def one_start(env: dict[str, str], cwd: Path) -> dict[str, float]:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([*common.PARLEY, "serve", "--port", str(port), "--workers", "1"], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    try:
        while not _healthy(port):
            if proc.poll() is not None:
                raise RuntimeError(f"parley serve exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}"
                                   if proc.stderr else "parley serve exited")
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("parley serve did not become ready in 60 s")
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        cpu = common.tree_cpu(ps)
        main = ps.cpu_times()
        # What a start costs in all: work a start leaves running after the first 200 (a thread, a task) is
        # paid too. Settled = the tree's CPU once it has grown by under 10 ms in 0.5 s (at most 10 s).
        settled, deadline = cpu, time.perf_counter() + 10
        while time.perf_counter() < deadline:
            time.sleep(0.5)
            now = common.tree_cpu(ps)
            grew, settled = now - settled, now
            if grew < 0.01:
                break
        return {"wall_s": wall, "cpu_s": cpu, "main_cpu_s": main.user + main.system, "settled_cpu_s": settled}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def child_cpu(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def med(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", type=int, default=9, help="server starts (median reported)")
    ap.add_argument("--import-runs", type=int, default=9, help="runs of each import / migrate command")
    ap.add_argument("--pyc", choices=["keep", "compile", "none"], default="keep",
                    help="the tree's .pyc files: as they are, written first, or deleted first")
    ap.add_argument("--cwd", type=Path, default=common.ROOT, help="the checkout whose `server` runs")
    args = ap.parse_args()
    cwd: Path = args.cwd.resolve()
    if args.pyc == "compile":
        compile_tree(cwd)
    elif args.pyc == "none":
        for cache in (cwd / "server").rglob("__pycache__"):
            shutil.rmtree(cache)
    pycs = sum(1 for _ in (cwd / "server").rglob("*.pyc"))
    common.ensure_services()
    db = common.create_db()
    try:
        env = {**os.environ, "DATABASE_URL": db, "REDIS_URL": common.redis_url(), "PARLEY_RATE_LIMITS": "off",
               "PARLEY_SECRET": "bench-secret-0123456789abcdef0123"}
        py = sys.executable
        commands = {"import server.app": [py, "-c", "import server.app"],
                    "import server.cli": [py, "-c", "import server.cli"],
                    "migrate (current db)": [*common.PARLEY, "migrate"]}
        result: dict[str, Any] = {"machine": common.machine(), "cwd": str(cwd), "pyc_files": pycs,
                                  "dont_write_bytecode": os.environ.get("PYTHONDONTWRITEBYTECODE", ""),
                                  "commands": {}}
        load0 = os.getloadavg()
        child_cpu(commands["import server.app"], env, cwd)  # warm the page cache (and write .pyc files if allowed)
        for name, cmd in commands.items():
            rows = [child_cpu(cmd, env, cwd) for _ in range(args.import_runs)]
            result["commands"][name] = {"cpu_s": med(rows, "cpu_s"), "wall_s": med(rows, "wall_s"), "runs": rows}
        starts = [one_start(env, cwd) for _ in range(args.starts)]
        result["serve"] = {"cpu_s": med(starts, "cpu_s"), "main_cpu_s": med(starts, "main_cpu_s"),
                           "settled_cpu_s": med(starts, "settled_cpu_s"),
                           "wall_s": med(starts, "wall_s"), "runs": starts}
        result["loadavg_before_after"] = [load0, os.getloadavg()]
        path = common.write_result("startup", result)
    finally:
        common.drop_db(db)
    print(f"{cwd}: {pycs} .pyc files under server/, PYTHONDONTWRITEBYTECODE={result['dont_write_bytecode']!r}; "
          f"load average before {load0[0]:.2f}, after {os.getloadavg()[0]:.2f} (1 min)")
    print(f"{'command':<28}{'CPU s':>8}{'wall s':>8}   (medians)")
    for name, r in result["commands"].items():
        print(f"{name:<28}{r['cpu_s']:8.3f}{r['wall_s']:8.3f}   of {args.import_runs}")
    s = result["serve"]
    print(f"{'serve to /healthz 200':<28}{s['cpu_s']:8.3f}{s['wall_s']:8.3f}   of {args.starts}; "
          f"main process {s['main_cpu_s']:.3f} s CPU")
    print(f"{'serve, settled after ready':<28}{s['settled_cpu_s']:8.3f}")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
