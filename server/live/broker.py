"""The broker: a doorbell between processes, never the source of truth (docs/live.md).

Two implementations behind one small interface, run through the same
contract tests: MemoryBroker (one process, REDIS_URL unset) and RedisBroker.
Each process holds ONE subscriber connection; the hub subscribes a thread's
channel on its first local watcher and unsubscribes after its last.

Redis pub/sub is at-most-once: a message published while we are
disconnected, or dropped because our output buffer overflowed, is gone. So
after every (re)connect the broker calls handler.on_reconnect(), and the hub
reads what it missed from thread_events. That is what makes reconnecting
safe (broadcaster's maintainers refuse silent reconnects for this reason).
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from typing import Any, Protocol

import hiredis
import redis.asyncio as aioredis

log = logging.getLogger(__name__)


class Handler(Protocol):
    def on_message(self, channel: str, message: bytes) -> None: ...

    def on_reconnect(self) -> None: ...


class Broker(ABC):
    """publish(channel, bytes) to every process; subscribe() returns once the subscription is in place.

    Channels live under `namespace` (parley:<deployment id>, set by the app from the database), so
    forums that share a Redis never hear each other: parley:<id>:thread:<thread id> and parley:<id>:presence.
    """

    name = "broker"
    namespace = "parley"

    def thread_channel(self, thread_id: int) -> str:
        return f"{self.namespace}:thread:{thread_id}"

    def thread_of(self, channel: str) -> int | None:
        """The thread id of one of our thread channels, else None."""
        prefix = f"{self.namespace}:thread:"
        if channel.startswith(prefix) and channel[len(prefix):].isdigit():
            return int(channel[len(prefix):])
        return None

    def user_channel(self, user_id: int) -> str:
        """user:{id}: what every socket of one user must hear (server/live/userchannel.py)."""
        return f"{self.namespace}:user:{user_id}"

    def user_of(self, channel: str) -> int | None:
        prefix = f"{self.namespace}:user:"
        if channel.startswith(prefix) and channel[len(prefix):].isdigit():
            return int(channel[len(prefix):])
        return None

    @property
    def presence_channel(self) -> str:
        return f"{self.namespace}:presence"

    @abstractmethod
    async def start(self, handler: Handler) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

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


def _command(*args: str | bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


class RedisBroker(Broker):
    """PUBLISH through a pooled client; SUBSCRIBE on one hand-held connection parsed by hiredis.

    The subscriber is written against the raw protocol (a few dozen lines) so that
    it can confirm each subscription, reconnect with backoff, and tell the hub
    exactly when messages may have been lost.
    """

    name = "redis"

    def __init__(self, url: str, sharded: bool = False) -> None:
        self.url = url
        # Sharded pub/sub (Redis 7: SPUBLISH/SSUBSCRIBE) keeps a channel on the node that owns its slot,
        # so a Redis Cluster does not broadcast every event to every node. Same semantics otherwise.
        self.sharded = sharded
        self.cmd_sub, self.cmd_unsub, self.cmd_pub = (
            ("SSUBSCRIBE", "SUNSUBSCRIBE", "SPUBLISH") if sharded else ("SUBSCRIBE", "UNSUBSCRIBE", "PUBLISH"))
        self.msg_kind, self.sub_kind = (b"smessage", b"ssubscribe") if sharded else (b"message", b"subscribe")
        self.client = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3,
                                              health_check_interval=10)
        self.conn_kwargs: dict[str, Any] = self.client.connection_pool.connection_kwargs
        self.handler: Handler | None = None
        self.channels: set[str] = set()
        self.pending: dict[str, list[asyncio.Future[None]]] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self._connected = False
        self.reconnects = 0
        self.last_error: str | None = None

    @property
    def healthy(self) -> bool:
        return self._connected

    async def start(self, handler: Handler) -> None:
        self.handler = handler
        self.task = asyncio.create_task(self._run(), name="redis-subscriber")

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        if self.writer is not None:
            self.writer.close()
        await self.client.aclose()

    async def publish(self, channel: str, message: bytes) -> None:
        await self.client.execute_command(self.cmd_pub, channel, message)

    async def subscribe(self, channel: str) -> None:
        if channel in self.channels:
            return
        self.channels.add(channel)
        if self.writer is None or not self._connected:
            return  # subscribed on reconnect, followed by on_reconnect() → backfill
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.setdefault(channel, []).append(fut)
        self.writer.write(_command(self.cmd_sub, channel))
        try:
            await asyncio.wait_for(asyncio.shield(fut), 5)
        except TimeoutError:
            log.warning("no confirmation for SUBSCRIBE %s; relying on reconnect backfill", channel)

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self.channels:
            return
        self.channels.discard(channel)
        if self.writer is not None and self._connected:
            self.writer.write(_command(self.cmd_unsub, channel))

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        kw = self.conn_kwargs
        if "path" in kw:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(kw["path"]), 3)
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(kw.get("host", "localhost"), kw.get("port", 6379)), 3)
        if kw.get("password"):
            auth = ("AUTH", kw["username"], kw["password"]) if kw.get("username") else ("AUTH", kw["password"])
            writer.write(_command(*auth))
            rd = hiredis.Reader()
            rd.feed(await asyncio.wait_for(reader.read(1024), 3))
            reply = rd.gets()
            if isinstance(reply, Exception):
                writer.close()
                raise ConnectionError(f"Redis AUTH failed: {reply}")
        return reader, writer

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                reader, writer = await self._open()
                parser = hiredis.Reader()
                self.writer = writer
                writer.write(_command("PING"))
                sent = set(self.channels)
                for channel in sorted(sent):  # one by one: sharded channels may not share a slot
                    writer.write(_command(self.cmd_sub, channel))
                await writer.drain()
                self._connected = True
                for channel in self.channels - sent:  # subscribe() calls made while we drained
                    writer.write(_command(self.cmd_sub, channel))
                if not first:
                    self.reconnects += 1
                    log.info("redis subscriber reconnected; backfilling from thread_events")
                first = False
                backoff = 0.1
                assert self.handler is not None
                # Anything published while we were away is in thread_events: let the hub read it.
                self.handler.on_reconnect()
                await self._read(reader, parser)
                raise ConnectionError("redis closed the connection")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._connected or self.last_error != str(exc):
                    log.warning("redis subscriber down (%s); retrying in %.1fs", exc, backoff)
                self.last_error = str(exc)
                self._connected = False
                if self.writer is not None:
                    self.writer.close()
                    self.writer = None
                for futs in self.pending.values():
                    for f in futs:
                        if not f.done():
                            f.set_result(None)
                self.pending.clear()
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 5.0)

    async def _read(self, reader: asyncio.StreamReader, parser: hiredis.Reader) -> None:
        handler = self.handler
        assert handler is not None
        msg_kind, sub_kind = self.msg_kind, self.sub_kind
        while True:
            data = await reader.read(1 << 18)
            if not data:
                return
            parser.feed(data)
            while (msg := parser.gets()) is not False:
                if isinstance(msg, list) and msg:
                    kind = msg[0]
                    if kind == msg_kind:
                        try:
                            handler.on_message(msg[1].decode(), msg[2])
                        except Exception:
                            log.exception("hub failed on a message for %s", msg[1])
                    elif kind == sub_kind:
                        for f in self.pending.pop(msg[1].decode(), []):
                            if not f.done():
                                f.set_result(None)
                elif isinstance(msg, hiredis.ReplyError):
                    log.warning("redis subscriber error reply: %s", msg)
