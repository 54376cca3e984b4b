"""Clients that vanish without a close frame are found by the server's ping timeout and dropped."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from fault_support import metric, parse_frames, raw_ws, read_all, setup_forum, ws_frame
from support.api import Api

SOCKETS = "parley_ws_open_sockets"


def _site_users(url: str) -> set[int]:
    return {u["id"] for u in httpx.get(url + "/api/presence", timeout=5).json()["users"]}


async def test_vanished_clients_are_dropped_by_the_ping_timeout(spawn, pg_url, watchers):
    """Two signed-in raw sockets open, then never read or answer pings (one idle; one subscribed to a thread
    whose ~6 MB of new events leave ~2 MB stuck in the server's buffer for it): within 2 × heartbeat + 15 s
    both are dropped (open-socket gauge, Active Now), the idle one with close 1011; a normal client stays."""
    # Presence grace 0: a user leaves Active Now as soon as the server drops their socket.
    # A high pending-output cap: the stuck socket must be found by the ping timeout, not by the 1013 rule.
    srv = spawn(PARLEY_PRESENCE_GRACE_SECONDS="0", PARLEY_WS_MAX_PENDING_BYTES=str(64 << 20),
                PARLEY_WS_HEARTBEAT_SECONDS="5")
    mod, slug, tid = setup_forum(srv.url, pg_url)
    quiet_user, stuck_user = Api(srv.url).sign_up(), Api(srv.url).sign_up()
    healthy = await watchers(srv.ws_url, cookie=mod.session_cookie)
    heartbeat = healthy.frames[0]["heartbeat"]
    assert (await healthy.subscribe(tid))["seq"] == 1
    quiet = raw_ws(srv.port, quiet_user.session_cookie)
    stuck = raw_ws(srv.port, stuck_user.session_cookie, rcvbuf=4096)
    try:
        await _vanish(srv, tid, mod, healthy, heartbeat, quiet, quiet_user, stuck, stuck_user)
    finally:
        quiet.close()
        stuck.close()  # a stuck socket left open would hold up the server's graceful shutdown for 8 s


async def _vanish(srv, tid, mod, healthy, heartbeat, quiet, quiet_user, stuck, stuck_user) -> None:  # noqa: ANN001
    subscribe = ws_frame(json.dumps({"type": "subscribe", "thread": tid}).encode())
    opened = time.monotonic()
    stuck.sendall(subscribe)  # the quiet one subscribes to nothing: nothing is ever pending for it
    ids = {quiet_user.user["id"], stuck_user.user["id"]}
    deadline = time.monotonic() + 5
    while not (ids <= _site_users(srv.url) and metric(srv.url, SOCKETS) == 3):
        assert time.monotonic() < deadline, "the raw sockets never showed up"
        await asyncio.sleep(0.1)

    # ~2 MB more than the kernel buffers hold (≤ 4 MB send + a 4 KB receive window) stays in the transport.
    client = httpx.AsyncClient(base_url=srv.url, cookies=mod.http.cookies, timeout=30)
    big = "y" * 19000  # ~40 KB per event (body + html)

    async def post(k: int) -> None:
        for i in range(50):
            r = await client.post(f"/api/threads/{tid}/posts", json={"body": f"{k}.{i} {big}"})
            assert r.status_code == 201, r.text
    await asyncio.gather(*(post(k) for k in range(3)))
    await client.aclose()
    await healthy.wait_seq(tid, 151, timeout=30)

    limit = 2 * heartbeat + 15
    dropped_at: dict[str, float] = {}
    while time.monotonic() - opened < limit and len(dropped_at) < 2:
        present = _site_users(srv.url)
        for name, user in (("quiet", quiet_user), ("stuck", stuck_user)):
            if name not in dropped_at and user.user["id"] not in present:
                dropped_at[name] = time.monotonic() - opened
        await asyncio.sleep(0.5)
    gauge = metric(srv.url, SOCKETS)
    print(f"heartbeat {heartbeat} s; dropped after {dropped_at}; open sockets now {gauge}")

    data, eof = await asyncio.to_thread(read_all, quiet, 5)
    closes = [p for op, p in parse_frames(data) if op == 0x8]
    assert closes and int.from_bytes(closes[-1][:2], "big") == 1011, (closes, data[-200:])
    assert eof, "the quiet socket was never closed by the server"
    assert healthy.closed is None, f"the healthy client was dropped ({healthy.closed})"
    assert "quiet" in dropped_at, f"a vanished idle client was not dropped within {limit} s"
    assert "stuck" in dropped_at and gauge == 1, (
        f"a vanished client with output pending was not dropped within {limit} s (open sockets: {gauge})")
