"""With permessage-deflate on, sockets go through the portable AsgiConn path: a healthy reader of
non-ASCII text keeps up and is never taken for a slow consumer."""

from __future__ import annotations

import asyncio

import pytest

from support.api import Api, new_thread, unique
from support.databases import make_moderator


@pytest.fixture(scope="module")
def ws_compression() -> bool:
    """Compressed only: these tests turn compression on themselves (tests/live/conftest.py runs the rest twice)."""
    return True


async def test_non_ascii_frames_do_not_make_a_healthy_socket_look_slow(spawn, pg_url, watchers):
    """60 replies of 3 KB of 'é' each through a compressed socket with a 64 KiB pending cap: all arrive, no 1013."""
    proc = spawn(PARLEY_WS_COMPRESSION="on", PARLEY_WS_MAX_PENDING_BYTES="65536")
    mod = await asyncio.to_thread(lambda: Api(proc.url).sign_up())
    make_moderator(pg_url, mod.user["username"])
    slug = unique("c")
    assert (await asyncio.to_thread(mod.post, "/api/categories", json={"slug": slug, "name": "C"})).status_code == 201
    thread = await asyncio.to_thread(new_thread, mod, slug)
    tid = thread["thread"]["id"]
    w = await watchers(proc.ws_url)
    assert (await w.subscribe(tid))["type"] == "subscribed"
    author = await asyncio.to_thread(lambda: Api(proc.url).sign_up())
    for i in range(60):
        r = await asyncio.to_thread(author.post, f"/api/threads/{tid}/posts", json={"body": f"{i} " + "é" * 1500})
        assert r.status_code == 201, r.text
        await w.wait_seq(tid, i + 2, timeout=20)  # read as it comes: a healthy, keeping-up reader
    assert w.seqs(tid) == list(range(2, 62))
    assert w.closed is None
