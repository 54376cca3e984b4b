"""One pub/sub connection to one Redis server: the subscriber both brokers use.

Connections are opened (TCP or unix socket, TLS, AUTH) and commands encoded by live/resp.py, which the
publishing connection (live/publisher.py) shares; this module owns the subscriber's read loop.

RedisBroker holds one Subscriber; RedisClusterBroker one per master node.
Written against the raw protocol and parsed by hiredis rather than through
redis-py's PubSub: it costs less CPU per received message (bench/subscriber.py,
figures in docs/architecture.md) and it lets us say exactly when every
channel is in place again, which is what makes a reconnect lossless:

- connect (TLS for rediss://, AUTH with the URL's ACL user and password),
  then SUBSCRIBE every channel and PING: Redis answers in order, so the PONG
  means every subscription is confirmed, and only then is `on_ready` called
  (the brokers turn it into handler.on_reconnect(), the hub's backfill);
- an idle connection is pinged every `ping_every` seconds, and one that
  answers nothing for another `ping_every` is dropped: a Redis that hangs, or
  a connection that died without an RST (a paused server, a dropped route),
  would otherwise look connected forever while messages are lost;
- reconnects back off exponentially with jitter (0.1 s doubling to 5 s, each
  wait randomised ±50 %), so processes do not reconnect in lockstep.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import hiredis

from .resp import Endpoint, command, open_connection

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT = 5.0  # subscribe() waits this long for its confirmation, then relies on reconnect backfill
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0


class Subscriber:
    """One subscriber connection: the channels it should carry, kept subscribed across reconnects.

    Callbacks (all called on the event loop, none may block):
      on_message(channel, data)  a message on one of our channels
      on_ready()                 connected and every channel confirmed (after each (re)connect)
      on_dropped(channel)        the server unsubscribed us by itself (a cluster slot moved away)
      on_error(text)             an error reply (a cluster's MOVED for an SSUBSCRIBE)
      on_down(exc)               the connection failed or was lost
    """

    def __init__(self, ep: Endpoint, on_message: Callable[[str, bytes], None], on_ready: Callable[[], None], *,
                 sharded: bool = False, ping_every: float = 10.0, name: str = "redis subscriber",
                 on_dropped: Callable[[str], None] | None = None, on_error: Callable[[str], None] | None = None,
                 on_down: Callable[[Exception], None] | None = None) -> None:
        self.endpoint = ep
        self.on_message = on_message
        self.on_ready = on_ready
        self.on_dropped = on_dropped
        self.on_error = on_error
        self.on_down = on_down
        self.ping_every = ping_every
        self.name = name
        s = "S" if sharded else ""
        self.cmd_sub, self.cmd_unsub = f"{s}SUBSCRIBE", f"{s}UNSUBSCRIBE"
        self.kind_msg, self.kind_sub, self.kind_unsub = (
            (b"smessage", b"ssubscribe", b"sunsubscribe") if sharded else (b"message", b"subscribe", b"unsubscribe"))
        self.channels: set[str] = set()
        self.pending: dict[str, list[asyncio.Future[None]]] = {}
        self.unsubscribing: dict[str, int] = {}  # UNSUBSCRIBEs we sent whose reply is still due
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self.connected = False    # every channel confirmed on the current connection
        self.confirming = False   # the PING after the connect's SUBSCRIBEs is not answered yet
        self.seen = 0.0           # monotonic time of the last bytes read
        self.pinged = False       # an idle PING is out and unanswered
        self.closed = False
        self.ready_count = 0      # times on_ready was called: the first connect and every reconnect
        self.last_error: str | None = None
        self.backoff = BACKOFF_MIN

    # -- interface -------------------------------------------------------

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"{self.name} {self.endpoint}")

    async def close(self) -> None:
        self.closed = True
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        self._release()

    async def subscribe(self, channel: str) -> None:
        """Returns once the subscription is confirmed, or at once while disconnected (the channel is
        subscribed on connect, then on_ready() tells the caller to read what it may have missed)."""
        fut = self.add(channel)
        if fut is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(fut), CONFIRM_TIMEOUT)
        except TimeoutError:
            log.warning("%s %s: no confirmation for %s %s; relying on reconnect backfill",
                        self.name, self.endpoint, self.cmd_sub, channel)

    def add(self, channel: str) -> asyncio.Future[None] | None:
        """Carry `channel`; if a connection is open, send the SUBSCRIBE now and return its confirmation."""
        if channel in self.channels:
            return None
        self.channels.add(channel)
        if self.writer is None:
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.setdefault(channel, []).append(fut)
        self._send(self.cmd_sub, channel)
        return fut

    def stop(self) -> None:
        """close() for a caller that cannot wait (a cluster node that stopped being a master)."""
        self.closed = True
        if self.task is not None:
            self.task.cancel()
        self._release()

    def unsubscribe(self, channel: str) -> None:
        if channel not in self.channels:
            return
        self.channels.discard(channel)
        self._resolve(channel)
        if self.writer is not None:
            self.unsubscribing[channel] = self.unsubscribing.get(channel, 0) + 1
            self._send(self.cmd_unsub, channel)

    def forget(self, channel: str) -> None:
        """Stop carrying a channel the server no longer sends us (refused or moved): nothing to send."""
        self.channels.discard(channel)
        self._resolve(channel)

    # -- connection ------------------------------------------------------

    def _send(self, *args: str) -> None:
        if self.writer is not None:
            self.writer.write(command(*args))

    def _resolve(self, channel: str) -> None:
        for f in self.pending.pop(channel, []):
            if not f.done():
                f.set_result(None)

    def _release(self) -> None:
        """The connection is gone: nothing is confirmed any more; subscribe() callers stop waiting."""
        self.connected = self.confirming = False
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.unsubscribing.clear()
        for channel in list(self.pending):
            self._resolve(channel)

    async def _run(self) -> None:
        while not self.closed:
            try:
                await self._session()
            except asyncio.CancelledError:
                self._release()
                raise
            except Exception as exc:
                delay = self.backoff * (0.5 + random.random())
                text = str(exc) or exc.__class__.__name__
                if self.connected or self.last_error != text:  # one line per outage, not one per attempt
                    log.warning("%s %s down (%s); retrying in %.1fs", self.name, self.endpoint, text, delay)
                self.last_error = text
                self._release()
                if self.on_down is not None:
                    self.on_down(exc)
                await asyncio.sleep(delay)
                self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    async def _session(self) -> None:
        reader, writer = await open_connection(self.endpoint)
        self.writer = writer
        for channel in sorted(self.channels):  # one by one: sharded channels rarely share a slot
            self._send(self.cmd_sub, channel)
        self._send("PING")  # answered after the SUBSCRIBEs: then they are all in place
        self.confirming = True
        self.seen, self.pinged = time.monotonic(), True  # the PING above is due within ping_every
        watchdog = asyncio.create_task(self._watchdog(writer), name=f"{self.name} ping {self.endpoint}")
        try:
            await writer.drain()
            await self._read(reader)
        finally:
            watchdog.cancel()
        if watchdog.done() and not watchdog.cancelled() and watchdog.result():
            raise ConnectionError(f"no answer to PING within {self.ping_every:g}s")
        raise ConnectionError("redis closed the connection")

    async def _watchdog(self, writer: asyncio.StreamWriter) -> bool:
        """PING an idle connection; abort it when a PING stays unanswered for ping_every (no RST needed).
        A timer beside the read loop rather than a timeout on every read: that would cost on every message."""
        while True:
            await asyncio.sleep(self.ping_every)
            if time.monotonic() - self.seen < self.ping_every:
                continue
            if self.pinged:
                writer.transport.abort()  # the read loop sees EOF at once
                return True
            self._send("PING")
            self.pinged = True

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader()
        on_message = self.on_message
        kind_msg = self.kind_msg
        while True:
            data = await reader.read(1 << 18)
            if not data:
                return
            self.seen = time.monotonic()
            self.pinged = False
            parser.feed(data)
            while (msg := parser.gets()) is not False:
                if isinstance(msg, list) and msg:
                    kind = msg[0]
                    if kind == kind_msg:
                        try:
                            on_message(msg[1].decode(), msg[2])
                        except Exception:
                            log.exception("%s: handler failed on a message for %s", self.name, msg[1])
                    elif kind == self.kind_sub:
                        self._resolve(msg[1].decode())
                    elif kind == self.kind_unsub:
                        self._unsubscribed(msg[1].decode())
                    elif kind == b"pong":
                        self._pong()
                elif msg == b"PONG":  # no channel subscribed yet: a plain reply
                    self._pong()
                elif isinstance(msg, hiredis.ReplyError):
                    if self.on_error is not None:
                        self.on_error(str(msg))
                    else:
                        log.warning("%s %s error reply: %s", self.name, self.endpoint, msg)

    def _pong(self) -> None:
        if not self.confirming:
            return  # an idle PING's answer
        self.confirming = False
        self.connected = True
        self.backoff = BACKOFF_MIN
        if self.ready_count:
            log.info("%s %s reconnected; backfilling from thread_events", self.name, self.endpoint)
        self.ready_count += 1
        self.last_error = None
        self.on_ready()

    def _unsubscribed(self, channel: str) -> None:
        n = self.unsubscribing.get(channel, 0)
        if n > 0:  # the answer to our UNSUBSCRIBE
            if n == 1:
                del self.unsubscribing[channel]
            else:
                self.unsubscribing[channel] = n - 1
            return
        if channel in self.channels:  # the server dropped it: a cluster slot moved (or is moving) elsewhere
            self.channels.discard(channel)
            if self.on_dropped is not None:
                self.on_dropped(channel)
