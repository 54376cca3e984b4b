"""The live path's fast write (live/conn.RawConn) is in use under the uvicorn the project pins: it reaches into
uvicorn's websocket protocol, so an upgrade that changes it would silently fall back to the 2x slower portable
path. This test fails then, and the pin in pyproject.toml says to run it before raising the bound."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def ws_compression() -> bool:
    """Once, uncompressed: the test starts its compressed server itself."""
    return False


def by_path(url: str) -> dict[str, float]:
    """parley_ws_sockets_by_path{path=...} from /metrics."""
    out = {}
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith("parley_ws_sockets_by_path{"):
            out[line.split('path="')[1].split('"')[0]] = float(line.split()[-1])
    return out


async def test_sockets_use_the_raw_write_path_unless_compressed(spawn, watchers):
    """Without compression every socket is written raw; with permessage-deflate negotiated, through ASGI."""
    plain = spawn()
    opened = [await watchers(plain.ws_url) for _ in range(3)]
    counts = by_path(plain.url)
    assert counts.get("raw") == 3 and counts.get("asgi", 0) == 0, counts
    await opened[0].ws.close()
    await opened[0].task
    assert by_path(plain.url).get("raw") == 2  # closed sockets leave the gauge

    deflate = spawn(PARLEY_WS_COMPRESSION="on")
    from support.ws import Watcher
    w = await Watcher.open(deflate.ws_url, compress=True)
    try:
        counts = by_path(deflate.url)
        assert counts.get("asgi") == 1 and counts.get("raw", 0) == 0, counts
    finally:
        await w.ws.close()
