"""The broker: a doorbell between processes, never the source of truth (docs/live.md).

Three implementations behind one small interface, run through the same
contract tests: MemoryBroker (one process, REDIS_URL unset), RedisBroker and
RedisClusterBroker (cluster.py); both Redis ones subscribe through subscriber.py.
Each process holds ONE subscriber connection (one per master on a cluster);
the hub subscribes a thread's channel on its first local watcher and
unsubscribes after its last. Channel names and formats: channels.py.

Redis pub/sub is at-most-once: a message published while we are
disconnected, or dropped because our output buffer overflowed, is gone. So
after every (re)connect, once every channel is confirmed again, the broker
calls handler.on_reconnect(), and the hub
reads what it missed from thread_events. That is what makes reconnecting
safe (broadcaster's maintainers refuse silent reconnects for this reason).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Protocol

from .publisher import Publisher
from .resp import endpoint
from .subscriber import Subscriber

# A publish is a doorbell: a lost one costs a backfill, a slow one holds up the request that rings it. Without
# a deadline redis-py's retries on a Redis that hangs (paused, half-open) add up to a minute.
PUBLISH_TIMEOUT = 5.0


class Handler(Protocol):
    def on_message(self, channel: str, message: bytes) -> None: ...

    def on_reconnect(self) -> None: ...


class Broker(ABC):
    """publish(channel, bytes) to every process; subscribe() returns once the subscription is in place.

    A broker moves bytes between processes and knows nothing of what they mean: channel names and the
    formats of their messages are live/channels.py's.
    """

    name = "broker"

    @abstractmethod
    async def start(self, handler: Handler) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        """Publish several (channel, message) pairs, in order; a backend may send them in one round trip
        (one reply's events and notifications). Tries every one, as Redis does with a pipeline (one
        failing channel does not keep the others' messages back); raises the first failure at the end."""
        first: Exception | None = None
        for channel, message in items:
            try:
                await self.publish(channel, message)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

    @abstractmethod
    async def subscribe(self, channel: str) -> None: ...

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None: ...

    @property
    @abstractmethod
    def healthy(self) -> bool: ...


class MemoryBroker(Broker):
    """In-process: one server process only (parley refuses --workers > 1 without REDIS_URL)."""

    name = "memory"

    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.channels: set[str] = set()

    async def start(self, handler: Handler) -> None:
        self.handler = handler

    async def close(self) -> None:
        self.handler = None

    async def publish(self, channel: str, message: bytes) -> None:
        if self.handler is not None and channel in self.channels:
            # Delivered on the next loop turn, like a message coming back from Redis.
            asyncio.get_running_loop().call_soon(self.handler.on_message, channel, message)

    async def subscribe(self, channel: str) -> None:
        self.channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)

    @property
    def healthy(self) -> bool:
        return True


class RedisBroker(Broker):
    """PUBLISH on one pipelined connection (publisher.py); SUBSCRIBE on one Subscriber connection (subscriber.py).

    `url` is redis://, rediss:// (TLS; redis-py's ssl_ca_certs / ssl_cert_reqs URL options apply to both
    connections) or unix://, with an ACL user and password in it when Redis wants them. A Redis Cluster
    is RedisClusterBroker's: it follows MOVED, which a single connection cannot.
    """

    name = "redis"

    def __init__(self, url: str, ping_every: float = 10.0) -> None:
        self.url = url
        self.handler: Handler | None = None
        self.subscriber = Subscriber(endpoint(url), lambda c, m: None, self._on_ready, ping_every=ping_every)
        self.publisher = Publisher(endpoint(url), PUBLISH_TIMEOUT)  # live/publisher.py: cheaper than redis-py

    @property
    def healthy(self) -> bool:
        return self.subscriber.connected

    @property
    def channels(self) -> set[str]:
        return self.subscriber.channels

    async def start(self, handler: Handler) -> None:
        self.handler = handler
        self.subscriber.on_message = handler.on_message  # straight through: no extra call per message
        self.subscriber.start()

    async def close(self) -> None:
        await self.subscriber.close()
        await self.publisher.close()

    async def publish(self, channel: str, message: bytes) -> None:
        await self.publisher.publish([(channel, message)])

    async def publish_many(self, items: list[tuple[str, bytes]]) -> None:
        await self.publisher.publish(items)  # one write and one wait for all of them

    async def subscribe(self, channel: str) -> None:
        await self.subscriber.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        self.subscriber.unsubscribe(channel)

    def _on_ready(self) -> None:
        assert self.handler is not None
        # Anything published while we were away is in thread_events: let the hub read it.
        self.handler.on_reconnect()
