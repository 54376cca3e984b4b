"""Token buckets, shared by all processes through Redis, or in-process without it.

hit() answers 0 when the request may go ahead, else the seconds to wait.
When Redis is unreachable the limiter fails open: writes must keep working
through a broker outage (they are in PostgreSQL), and a short window without
limits is the lesser harm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from .live.cluster import RedisClient

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: capacity, refill/s, now, cost, need (the tokens that must be there; >= cost, e.g. a
# probe of cost 0 that needs 1). State: tokens and timestamp in one hash.
_LUA = """
local cap = tonumber(ARGV[1]); local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3]); local cost = tonumber(ARGV[4]); local need = tonumber(ARGV[5]) or cost
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= need then tokens = tokens - cost else wait = (need - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate * 1000) + 1000)
return tostring(wait)
"""


class Limiter(Protocol):
    """hit(key, (capacity, refill per second), cost, need) → 0 when the request may go ahead, else the
    seconds to wait."""

    async def hit(self, key: str, rule: tuple[int, float], cost: float = 1.0, need: float | None = None) -> float: ...


class Bucket:
    """One in-process token bucket (also used per websocket for frame floods)."""

    __slots__ = ("cap", "rate", "tokens", "ts", "clock")

    def __init__(self, rule: tuple[int, float], clock: Callable[[], float] = time.monotonic) -> None:
        self.cap, self.rate = rule
        self.clock = clock  # a parameter, so unit tests step time instead of sleeping through it
        self.tokens = float(self.cap)
        self.ts = clock()

    def take(self, cost: float = 1.0, need: float | None = None) -> float:
        need = cost if need is None else need
        now = self.clock()
        self.tokens = min(self.cap, self.tokens + (now - self.ts) * self.rate)
        self.ts = now
        if self.tokens >= need:
            self.tokens -= cost
            return 0.0
        return (need - self.tokens) / self.rate


class MemoryLimiter:
    def __init__(self, enabled: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    async def hit(self, key: str, rule: tuple[int, float], cost: float = 1.0, need: float | None = None) -> float:
        if not self.enabled:
            return 0.0
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) > 100_000:  # forget full buckets; they would allow the request anyway
                self.buckets = {k: b for k, b in self.buckets.items() if b.take(0) == 0 and b.tokens < b.cap}
            bucket = self.buckets[key] = Bucket(rule, self.clock)
        return bucket.take(cost, need)


class RedisLimiter:
    def __init__(self, redis: RedisClient, enabled: bool = True, namespace: str = "parley",
                 clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.clock = clock  # wall time: every process shares the bucket, so they must share the clock
        self.prefix = f"{namespace}:rl:"
        self.enabled = enabled
        self.script = redis.register_script(_LUA)

    async def hit(self, key: str, rule: tuple[int, float], cost: float = 1.0, need: float | None = None) -> float:
        if not self.enabled:
            return 0.0
        try:
            wait = await self.script(keys=[self.prefix + key], args=[rule[0], rule[1], self.clock(), cost,
                                                                        cost if need is None else need])
            return float(wait)
        except Exception as exc:  # Redis down: fail open, say so once per failure
            log.warning("rate limiter unavailable, allowing request: %s", exc)
            return 0.0
