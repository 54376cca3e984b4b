"""The live set runs twice: once as served by default, once with permessage-deflate on.

With compression on, every frame is written through AsgiConn (uvicorn's websocket protocol) instead of
straight to the transport, and its slow-consumer accounting differs: the issue that found pending
characters counted against pending bytes closed healthy sockets only in that mode.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "deflate"])
def ws_compression(request: pytest.FixtureRequest) -> bool:
    """Servers started by `server`/`spawn` compress, and `watchers` offer deflate, in the second run."""
    return bool(request.param)
