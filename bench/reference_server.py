"""The yardstick: a fan-out server on the `websockets` library's own asyncio server and broadcast().

Compression off. One Redis pattern subscription (`parley:*:thread:*`, redis-py with hiredis) for the
whole process; every message received on a thread's channel is sent verbatim, as a text frame, to
every socket that subscribed to that thread. It speaks just enough of Parley's /ws protocol for the
bench watchers: `hello` on connect, `{"type":"subscribe","thread":T}` → `subscribed`.

    python -m bench.reference_server --port 8765 --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import json

import redis.asyncio as aioredis
from websockets.asyncio.server import broadcast, serve

PATTERN = "parley:*:thread:*"  # Parley's channels: parley:<deployment>:thread:<id>
rooms: dict[int, set] = {}


async def handler(ws) -> None:
    await ws.send('{"type":"hello","user":null,"heartbeat":20}')
    joined: set[int] = set()
    try:
        async for text in ws:
            msg = json.loads(text)
            if msg.get("type") == "subscribe":
                thread = int(msg["thread"])
                rooms.setdefault(thread, set()).add(ws)
                joined.add(thread)
                await ws.send(json.dumps({"type": "subscribed", "thread": thread, "seq": None}, separators=(",", ":")))
            elif msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong", "id": msg.get("id")}, separators=(",", ":")))
    finally:
        for thread in joined:
            rooms[thread].discard(ws)


async def relay(url: str) -> None:
    pubsub = aioredis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(PATTERN)
    async for m in pubsub.listen():
        data = m["data"]
        if m["type"] != "pmessage" or data[:1] == b"T":  # b"T…" = Parley's typing relay, not an event
            continue
        members = rooms.get(int(m["channel"].rsplit(b":", 1)[1]))
        if members:
            broadcast(members, data.decode())


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    a = p.parse_args()
    async with serve(handler, a.host, a.port, compression=None, max_size=16 * 1024, ping_interval=20,
                     ping_timeout=20, backlog=4096):
        await relay(a.redis)


if __name__ == "__main__":
    asyncio.run(main())
