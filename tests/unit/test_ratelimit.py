"""Token buckets with a stepped clock (no sleeping): the in-process bucket and the Redis script
answer the same sequence of requests the same way."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from server.ratelimit import Bucket, MemoryLimiter, RedisLimiter
from support.clock import Clock


def test_a_full_bucket_allows_its_capacity_then_says_how_long_to_wait():
    """Capacity 3 at 1 token/s: three requests pass, the fourth waits 1 s; half a second later 0.5 s."""
    clock = Clock()
    b = Bucket((3, 1.0), clock)
    assert [b.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take() == pytest.approx(1.0)
    clock.now += 0.5
    assert b.take() == pytest.approx(0.5)
    clock.now += 0.5
    assert b.take() == 0.0


def test_refill_never_exceeds_capacity():
    """An hour of idleness refills to capacity, not beyond."""
    clock = Clock()
    b = Bucket((2, 10.0), clock)
    clock.now += 3600
    assert [b.take() for _ in range(3)][-1] > 0


def test_a_probe_costs_nothing_but_needs_a_whole_token():
    """cost=0, need=1 passes while a token is left and takes none; with none left it says how long."""
    clock = Clock()
    b = Bucket((1, 0.5), clock)
    assert b.take(cost=0, need=1) == 0.0 and b.tokens == 1.0
    assert b.take() == 0.0
    assert b.take(cost=0, need=1) == pytest.approx(2.0)


async def test_memory_limiter_keeps_one_bucket_per_key_and_can_be_off():
    """Keys are independent; a disabled limiter allows everything."""
    clock = Clock()
    lim = MemoryLimiter(clock=clock)
    assert [await lim.hit("a", (1, 1.0)) for _ in range(2)] == [0.0, pytest.approx(1.0)]
    assert await lim.hit("b", (1, 1.0)) == 0.0
    off = MemoryLimiter(enabled=False)
    assert all([await off.hit("a", (1, 1.0)) == 0.0 for _ in range(5)])


SEQUENCE = [(0.0, 1, None), (0.0, 1, None), (0.0, 1, None), (0.2, 1, None), (1.0, 0, 1), (3.0, 1, None),
            (0.0, 1, None), (0.0, 2, None), (10.0, 1, None)]


async def test_redis_script_and_memory_bucket_agree(redis_url):
    """The same requests at the same (stepped) times get the same waits from Redis and from memory."""
    client = aioredis.from_url(redis_url)
    try:
        mem_clock, redis_clock = Clock(), Clock(1_700_000_000.0)
        mem = MemoryLimiter(clock=mem_clock)
        red = RedisLimiter(client, namespace=f"test-{uuid.uuid4().hex[:8]}", clock=redis_clock)
        for step, cost, need in SEQUENCE:
            mem_clock.now += step
            redis_clock.now += step
            a = await mem.hit("k", (3, 0.5), cost, need)
            b = await red.hit("k", (3, 0.5), cost, need)
            assert a == pytest.approx(b, abs=1e-6), (step, cost, need, a, b)
    finally:
        await client.aclose()


async def test_redis_limiter_fails_open_when_redis_is_down():
    """With Redis unreachable a request is allowed (writes are in PostgreSQL; a short window without limits)."""
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        assert await RedisLimiter(client).hit("k", (1, 1.0)) == 0.0
    finally:
        await client.aclose()
