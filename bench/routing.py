"""Route dispatch: Starlette's scan of every route against server/app.PrefixRouter, for the paths requests take
most (issue 33: the scan was ~5 % of a reply's server CPU).

    .venv/bin/python -m bench.routing --rounds 5

Times, per path, the first full match found by each (the work Router.app does before the endpoint runs), in µs
per request, in one process, alternating the two in each round.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from starlette.routing import Match

from server import config
from server.app import create_app

PATHS = [("POST", "/api/threads/7/posts"), ("GET", "/api/threads/7"), ("GET", "/api/threads"),
         ("POST", "/api/posts/9/vote"), ("GET", "/t/7/a-question"), ("GET", "/api/me"), ("GET", "/healthz")]


def _scan(routes: list[Any], scope: dict[str, Any]) -> Any:
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n", type=int, default=20_000, help="dispatches per path, variant and round")
    a = p.parse_args()
    router = create_app(config.Settings(database_url="postgresql://x@127.0.0.1/x")).starlette.router
    print(f"{len(router.routes)} routes")
    print("method path | Starlette's scan µs | PrefixRouter µs | ratio")
    for method, path in PATHS:
        scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
        times: dict[str, list[float]] = {"scan": [], "prefix": []}
        for _ in range(a.rounds):
            t = time.perf_counter()
            for _ in range(a.n):
                _scan(router.routes, scope)
            times["scan"].append((time.perf_counter() - t) / a.n * 1e6)
            t = time.perf_counter()
            for _ in range(a.n):
                router.first_full(scope)
            times["prefix"].append((time.perf_counter() - t) / a.n * 1e6)
        scan, prefix = statistics.median(times["scan"]), statistics.median(times["prefix"])
        print(f"{method} {path} | {scan:.1f} | {prefix:.1f} | {prefix / scan:.2f}×")


if __name__ == "__main__":
    main()
