"""The broker's own PUBLISH connection (server/live/publisher.py) against a real redis-server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from server.live.publisher import Publisher
from server.live.resp import endpoint


async def _listen(url: str, channel: str) -> tuple[Any, Any]:
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=2)  # the subscribe confirmation
    return client, pubsub


async def _received(pubsub: Any, n: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(10):
        while len(got) < n:
            m = await pubsub.get_message(timeout=1)
            if m is not None and m["type"] == "message":
                got.append(m["data"])
    return got


async def test_a_batch_and_single_publishes_arrive_in_the_order_written(own_redis: Any) -> None:
    """1,000 messages in one batch, then concurrent single publishes: all arrive, the batch in order."""
    client, pubsub = await _listen(own_redis.url, "ch")
    pub = Publisher(endpoint(own_redis.url), timeout=5)
    try:
        await pub.publish([("ch", b"%d" % i) for i in range(1000)])
        await asyncio.gather(*(pub.publish([("ch", b"s%d" % i)]) for i in range(50)))
        got = await _received(pubsub, 1050)
        assert got[:1000] == [b"%d" % i for i in range(1000)]
        assert sorted(got[1000:]) == sorted(b"s%d" % i for i in range(50))
        assert not pub.waiting
    finally:
        await pub.close()
        await client.aclose()


async def test_a_restarted_redis_fails_what_was_waiting_and_the_next_publish_reconnects(own_redis: Any) -> None:
    """Redis going away fails the publish (a clear error, no hang); after its restart publishing works again."""
    pub = Publisher(endpoint(own_redis.url), timeout=2)
    try:
        await pub.publish([("ch", b"before")])
        own_redis.stop()
        with pytest.raises((ConnectionError, OSError, TimeoutError)):
            await pub.publish([("ch", b"while down")])
        own_redis.start()
        client, pubsub = await _listen(own_redis.url, "ch")
        await pub.publish([("ch", b"after")])
        assert await _received(pubsub, 1) == [b"after"]
        await client.aclose()
    finally:
        await pub.close()


async def test_a_refused_publish_is_an_error_and_the_connection_stays_usable(own_redis: Any) -> None:
    """An error reply fails its own batch only, with a clear error; the next publish on the connection goes through."""
    pub = Publisher(endpoint(own_redis.url), timeout=5)
    try:
        # Redis does not refuse a well-formed PUBLISH, so the batch here is one unknown command, written on
        # the publisher's connection as publish() would write its batch.
        writer = await pub._connection()
        from server.live.publisher import _Waiting
        waiting = _Waiting(1, asyncio.get_running_loop().create_future())
        pub.waiting.append(waiting)
        writer.write(b"*1\r\n$7\r\nNOSUCHX\r\n")
        with pytest.raises(ConnectionError, match="refused"):
            await asyncio.wait_for(waiting.future, 5)
        client, pubsub = await _listen(own_redis.url, "ch")
        await pub.publish([("ch", b"next")])
        assert await _received(pubsub, 1) == [b"next"]
        await client.aclose()
    finally:
        await pub.close()
