"""The live set's delivery modules run twice: once as served by default, once with permessage-deflate on.

With compression on, every frame is written through AsgiConn (uvicorn's websocket protocol) instead of
straight to the transport, and its slow-consumer accounting differs: the issue that found pending
characters counted against pending bytes closed healthy sockets only in that mode. So the modules about
how frames travel — delivery across processes, resuming, backpressure and faults, the no-gap property, the
compression itself — run both ways; the modules about what a frame says (notifications, moderation,
typing, feeds, tags, deleted text, batched backfill reads) run once: their frames take the same write path
as any other, and running them twice cost about a tenth of the whole suite's time (issue 26).
"""

from __future__ import annotations

import pytest

BOTH_WAYS = {"test_live_cluster", "test_live_compression", "test_live_events", "test_live_fast_path",
             "test_live_faults", "test_live_property", "test_live_resume"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ws_compression" in metafunc.fixturenames:
        both = metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_WAYS
        modes = [False, True] if both else [False]
        metafunc.parametrize("ws_compression", modes, ids=["plain", "deflate"][:len(modes)], indirect=True,
                             scope="module")


@pytest.fixture(scope="module")
def ws_compression(request: pytest.FixtureRequest) -> bool:
    """Servers started by `server`/`spawn` compress, and `watchers` offer deflate, in the second run."""
    return bool(request.param)
