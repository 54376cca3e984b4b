"""The app's router (server/app.PrefixRouter) picks, for every path, the route Starlette's full scan would pick."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Match

from server import config
from server.app import PrefixRouter, create_app

SAMPLES = {"int": ["7", "0", "123456789"], "str": ["cooking", "x", "a-b_c"], "path": ["a", "a/b.css", ""]}


def _paths(route_path: str) -> list[str]:
    """The route's path with each parameter filled by sample values, and near misses around it."""
    out = [route_path]
    for _ in range(3):
        out = [p2 for p in out for p2 in _fill(p)]
    return [p for p in out if "{" not in p] + [route_path.split("{")[0], route_path.rstrip("/") + "/x", "/nope"]


def _fill(path: str) -> list[str]:
    m = re.search(r"\{(\w+)(?::(\w+))?\}", path)
    if m is None:
        return [path]
    return [path[:m.start()] + v + path[m.end():] for v in SAMPLES.get(m.group(2) or "str", ["v"])]


def _full_scan(routes: list[Any], scope: dict[str, Any]) -> Any:
    for route in routes:
        if route.matches(scope)[0] is Match.FULL:
            return route
    return None


def test_every_route_and_near_miss_dispatches_as_starlette_would() -> None:
    """For every route's path (parameters filled, and near misses), every method: the same route as the full scan."""
    app = create_app(config.Settings(database_url="postgresql://x@127.0.0.1/x"))
    router = app.starlette.router
    assert isinstance(router, PrefixRouter)
    checked = 0
    for route in router.routes:
        for path in _paths(getattr(route, "path", "/")):
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
                scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
                found = router.first_full(scope)
                assert (found[0] if found else None) is _full_scan(router.routes, scope), (method, path)
                checked += 1
    assert checked > 1000


def test_routes_that_fix_few_segments_still_match_in_order() -> None:
    """Routes fixing fewer segments (/{slug}, /api/{x}, /u{name}, a mount) are tried in their place among the rest."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("")

    routes = [Route("/api/{x}/posts", ok, methods=["POST"]), Route("/api/threads/{id:int}", ok),
              Route("/u{name}", ok), Mount("/static", app=ok), Route("/{slug}", ok), Route("/api/threads/new", ok),
              Route("/", ok), Route("/api/threads/{id:int}/posts", ok, methods=["POST"])]
    router = PrefixRouter(routes)
    paths = ["/api/threads/posts", "/api/threads/7", "/api/threads/new", "/api/threads/7/posts", "/ualice", "/u",
             "/static/a.css", "/static", "/anything", "/", "/api", "/api/x/posts", "/api/threads"]
    for path in paths:
        for method in ("GET", "POST"):
            scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
            found = router.first_full(scope)
            assert (found[0] if found else None) is _full_scan(routes, scope), (method, path)
