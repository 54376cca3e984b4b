"""Where a reply's server CPU goes, item by item, for Parley and its floors side by side: py-spy's collapsed stacks
of a `bench.writes --profile-native` run turned into µs per reply per item.

    .venv/bin/python -m bench.writes --rate 400 --duration 15 --warmup 8 --target all --pin --profile-native
    .venv/bin/python -m bench.profile_ledger bench/results/writes-….json

Each sample of the server's event-loop thread (idle samples left out: the loop waiting in epoll, worker threads
waiting for work) goes to one item: the deepest frame that names a Parley feature (the session, the rate limit,
the body's parse, rendering, mentions and trust checks, the reply's statement, the notification batch, feeds,
publishing), else the deepest frame of a library layer (access log, metrics, Parley's middleware, routing, HTTP,
the event loop). An item's µs per reply is its share of the busy samples times the run's measured server CPU per
reply (psutil), so the columns add up to that number. The floors' handlers (bench/write_floor.py) count as "the
statement" for their database calls and share render.py's functions with Parley, so the same item means the same
work in every column.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from .common import ROOT

# (item, pattern on "function (file)"): a Parley feature; the deepest matching frame of a sample decides.
FEATURES: list[tuple[str, str]] = [
    ("session (cache or lookup)", r"require_user_cached|session_of|user_for|Cookies\.load|Signer"),
    ("rate limit", r"^limit \(.*server/api/common\.py|server/ratelimit\.py|server/limits\.py"),
    ("origin check", r"check_origin|origin_allowed"),
    ("body parse (JSON, limits)", r"server/api/inputs\.py|json_decode"),
    ("render (markdown-it + nh3)", r"render_body|server/render\.py|markdown_it|nh3"),
    ("mentions, trust, privileges", r"server/(api/)?mentions\.py|server/trust\.py|server/privileges\.py|spamcheck"),
    ("the handler's own code (its pool checkout too)", r"server/api/forum\.py|server/api/common\.py"),
    ("the reply's statement (asyncpg)", r"^_write \(|server/store/posts\.py|Floor\.(create_post|parley_statement)"),
    ("notification batch", r"Notified\.|server/live/userchannel\.py|^_batch \(.*server/effects\.py"),
    ("feeds", r"server/feedpublisher\.py"),
    ("publish (Redis)", r"publish_many|server/live/publisher\.py|server/live/broker\.py|redis/"),
    ("response (JSON)", r"^json \(.*server/api/common\.py|json_encode"),
]
# Library layers, for samples under no feature: again the deepest matching frame decides.
LAYERS: list[tuple[str, str]] = [
    ("access log", r"\(logging/"),
    ("metrics (prometheus)", r"prometheus_client"),
    ("database client, outside the statement", r"asyncpg"),
    ("Parley's middleware (headers, guard)", r"server/app\.py|server/httpguard\.py"),
    ("routing (Starlette)", r"starlette/routing\.py|starlette/_utils\.py"),
    ("Starlette, other", r"starlette/"),
    ("HTTP (uvicorn, httptools)", r"uvicorn/|httptools|parser\.c|llhttp"),
    ("event loop (uvloop, asyncio)", r"uvloop|loop\.c|asyncio/|_asyncio|Runner\.run|runners\.py"),
]
# A sample whose innermost frame is one of these is a thread waiting, not work.
IDLE = re.compile(r"epoll_wait|epoll_pwait|PyThread_acquire_lock|_queue_SimpleQueue_get|sem_(timed)?wait|"
                  r"pthread_cond_(timed)?wait|futex|select \(|^poll \(|__select|do_futex")


def classify(frames: list[str]) -> str:
    for table in (FEATURES, LAYERS):
        best, depth = "", -1
        for name, pattern in table:
            rx = re.compile(pattern)
            for i in range(len(frames) - 1, depth, -1):
                if rx.search(frames[i]):
                    best, depth = name, i
                    break
        if best:
            return best
    return "other"


def ledger(path: Path) -> tuple[Counter[str], int]:
    """Busy samples of the loop thread per item, and their total."""
    items: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]  # whole paths: the patterns name dirs
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames or IDLE.search(frames[-1]):
            continue
        if not any("Runner.run" in f or "run_until_complete" in f or "uvloop" in f for f in frames):
            continue  # not the event loop's thread (a worker thread doing something else)
        items[classify(frames)] += int(n)
    return items, sum(items.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("result", type=Path, help="a bench.writes result JSON written with --profile-native")
    a = p.parse_args()
    result = json.loads(a.result.read_text())
    columns: list[tuple[str, dict[str, float]]] = []
    for row, prof in zip(result["rows"], result["profiles"]):
        if not prof or "file" not in prof:
            continue
        items, total = ledger(ROOT / prof["file"])
        us = row["us_cpu_per_reply"]
        columns.append((f"{row['variant'] or 'parley'} ({us:,.0f} µs)",
                        {k: us * v / total for k, v in items.items()}))
    if not columns:
        raise SystemExit("no profiles in that result: run bench.writes with --profile-native")
    names = [n for n, _ in FEATURES] + [n for n, _ in LAYERS] + ["other"]
    print("µs of server CPU per reply, by item | " + " | ".join(c for c, _ in columns))
    print("---|" + "---:|" * len(columns))
    for name in names:
        if any(col.get(name, 0) >= 0.5 for _, col in columns):
            print(f"{name} | " + " | ".join(f"{col.get(name, 0):,.0f}" for _, col in columns))


if __name__ == "__main__":
    main()
