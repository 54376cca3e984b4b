"""The broker on a Redis Cluster: sharded pub/sub (SPUBLISH/SSUBSCRIBE), one subscriber per node.

A channel lives on the node that owns its hash slot (CRC16 of the whole
name: `parley:thread:{id}` carries no hash tag, so threads spread over all
slots and nodes). Publishing routes SPUBLISH by that slot through a small
connection pool per master and follows MOVED; it does not go through
redis-py's RedisCluster, whose first initialisation fails outright while
its "default node" (the first master) is down (it runs COMMAND there), which
would stop events for every thread instead of a third of them. Subscribing is ours, as in
RedisBroker: ONE hand-held connection per master node (never per socket or
per channel), parsed by hiredis, each SSUBSCRIBE confirmed.

`client` is a RedisCluster for presence and the rate limiter (ordinary
commands; non-transactional pipelines are split per node by redis-py).

The slot map comes from CLUSTER SLOTS. It is read again when a node answers
MOVED, when a node drops our subscription because its slot moved away (an
unsolicited sunsubscribe), when a node keeps refusing connections (it may
have failed over), and every REFRESH seconds. Channels whose owner changed
are resubscribed on the new owner.

Pub/sub is at-most-once, so after any node's subscriber (re)connects, and
after channels move between nodes, handler.on_reconnect() is called and the
hub backfills from thread_events: that is what makes it lossless.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from .broker import Broker, Handler, _command

log = logging.getLogger(__name__)

Addr = tuple[str, int]
REFRESH = 30.0    # seconds between routine slot-map reads
PING_EVERY = 10.0  # an idle subscriber pings; no answer within another PING_EVERY → reconnect


class _Pipeline(ClusterPipeline):
    """A non-transactional cluster pipeline that keeps two promises presence.py relies on.

    1. A doorbell (SPUBLISH/PUBLISH) queued after writes is sent only after those writes are done.
       On one Redis a pipeline runs in order on one connection; redis-py's cluster pipeline sends
       each node's share concurrently, so the doorbell could reach other processes before the HSET
       on another node has landed, and they would read (and keep) a stale snapshot.
    2. `command_stack` exists (presence counts len(pipe.command_stack)); ClusterPipeline only has len(pipe).
    Results come back in the order the commands were queued, as usual.
    """

    def __init__(self, client: RedisCluster, transaction: bool | None = None) -> None:
        super().__init__(client, transaction)
        self._doorbells: list[tuple[int, tuple[Any, ...], dict[str, Any]]] = []

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if name.upper() in ("SPUBLISH", "PUBLISH"):
            self._doorbells.append((len(self) + len(self._doorbells), (name, *args[1:]), kwargs))
            return self
        return super().execute_command(*args, **kwargs)

    @property
    def command_stack(self) -> list[Any]:
        return [*getattr(self._execution_strategy, "_command_queue", []), *self._doorbells]

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        bells, self._doorbells = self._doorbells, []
        results = list(await super().execute(raise_on_error, allow_redirections))
        for pos, args, kwargs in bells:
            try:
                reply: Any = await self.cluster_client.execute_command(*args, **kwargs)
            except Exception as exc:
                if raise_on_error:
                    raise
                reply = exc
            results.insert(pos, reply)
        return results


class ClusterClient(RedisCluster):
    """RedisCluster for presence and the rate limiter (non-transactional pipelines are split per node,
    doorbells last: see _Pipeline)."""

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if transaction or shard_hint:
            return super().pipeline(transaction, shard_hint)
        return _Pipeline(self, transaction)


def parse_urls(urls: str) -> tuple[list[Addr], str | None, str | None]:
    """'redis://[user:pass@]host:port,redis://host2:port2' → seed addresses, username, password."""
    seeds: list[Addr] = []
    username = password = None
    for raw in urls.split(","):
        raw = raw.strip()
        if not raw:
            continue
        parts = urlsplit(raw)
        if parts.scheme != "redis":
            raise ValueError(f"a Redis Cluster node URL must start with redis://, not {raw!r}")
        if parts.path not in ("", "/", "/0"):
            raise ValueError(f"a Redis Cluster has only database 0, not {raw!r}")
        seeds.append((parts.hostname or "127.0.0.1", parts.port or 6379))
        if parts.password is not None and password is None:
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password)
    if not seeds:
        raise ValueError("no Redis Cluster node URL given")
    return seeds, username, password


class _Node:
    """One master's subscriber connection and the channels it carries."""

    def __init__(self, addr: Addr) -> None:
        self.addr = addr
        self.channels: set[str] = set()
        self.pending: dict[str, list[asyncio.Future[None]]] = {}
        self.unsubscribing: dict[str, int] = {}  # SUNSUBSCRIBEs we sent and whose reply is still due
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None
        self.connected = False  # our subscriptions are in place (the PING after them was answered)
        self.ready = False      # waiting for that PING
        self.ever = False
        self.failures = 0
        self.last_error: str | None = None

    def send(self, *args: str) -> None:
        if self.writer is not None:
            self.writer.write(_command(*args))

    def release(self) -> None:
        """The connection is gone: nothing is confirmed any more; subscribe() callers stop waiting."""
        self.connected = self.ready = False
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.unsubscribing.clear()
        for futs in self.pending.values():
            for f in futs:
                if not f.done():
                    f.set_result(None)
        self.pending.clear()


class RedisClusterBroker(Broker):
    """SPUBLISH routed by slot over a small pool per master; SSUBSCRIBE on one hand-held connection per master."""

    name = "redis-cluster"
    sharded = True
    cmd_pub = "SPUBLISH"  # presence rings its doorbell the way the broker listens

    def __init__(self, urls: str) -> None:
        self.seeds, self.username, self.password = parse_urls(urls)
        self.client = ClusterClient(
            startup_nodes=[ClusterNode(h, p) for h, p in self.seeds], username=self.username,
            password=self.password, require_full_coverage=False, socket_timeout=5, socket_connect_timeout=2)
        self.handler: Handler | None = None
        self.channels: set[str] = set()
        self.route: dict[str, Addr | None] = {}    # channel → node it is subscribed on (None: no owner known)
        self.slots: list[Addr | None] | None = None  # slot → owning master, from CLUSTER SLOTS
        self.nodes: dict[Addr, _Node] = {}
        self.publishers: dict[Addr, aioredis.Redis] = {}  # pooled connections per master, for SPUBLISH
        self.lost: set[str] = set()                # channels a node dropped: subscribe again after a remap
        self.remap_wanted = asyncio.Event()
        self.mapped = asyncio.Event()  # set once the first slot map is in
        self.watcher: asyncio.Task[None] | None = None
        self.closed = False
        self.reconnects = 0
        self.remaps = 0

    # -- interface -------------------------------------------------------

    @property
    def healthy(self) -> bool:
        if self.slots is None or not self.nodes:
            return False
        return (all(n.connected for n in self.nodes.values())
                and all(self.route.get(c) is not None for c in self.channels))

    async def start(self, handler: Handler) -> None:
        self.handler = handler
        self.watcher = asyncio.create_task(self._watch(), name="redis-cluster-slots")

    async def close(self) -> None:
        self.closed = True
        tasks = [t for t in [self.watcher, *(n.task for n in self.nodes.values())] if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        for n in self.nodes.values():
            n.release()
        for p in self.publishers.values():
            await p.aclose()
        await self.client.aclose()

    async def publish(self, channel: str, message: bytes) -> None:
        if self.slots is None:  # just started: wait a moment for the first slot map
            try:
                await asyncio.wait_for(self.mapped.wait(), 3)
            except TimeoutError:
                raise ConnectionError("no Redis Cluster slot map (no node reachable)") from None
        addr = self._owner(channel)
        if addr is None:
            raise ConnectionError(f"no Redis Cluster node owns the slot of {channel}")
        try:
            await self._publisher(addr).execute_command("SPUBLISH", channel, message)
        except aioredis.ResponseError as exc:
            if not str(exc).startswith("MOVED"):
                raise
            # Our map is stale: send it where the node says, and read the map again.
            host, _, port = str(exc).split()[2].rpartition(":")
            self._want_remap()
            await self._publisher((host or addr[0], int(port))).execute_command("SPUBLISH", channel, message)

    def _publisher(self, addr: Addr) -> aioredis.Redis:
        client = self.publishers.get(addr)
        if client is None:
            client = self.publishers[addr] = aioredis.Redis(
                host=addr[0], port=addr[1], username=self.username, password=self.password,
                socket_timeout=5, socket_connect_timeout=2)
        return client

    async def subscribe(self, channel: str) -> None:
        if channel in self.channels:
            return
        self.channels.add(channel)
        addr = self._owner(channel)
        self.route[channel] = addr
        if addr is None:
            return  # no slot map yet: subscribed when it comes, followed by on_reconnect() → backfill
        node = self._node(addr)
        node.channels.add(channel)
        if node.writer is None:
            return  # subscribed on (re)connect, followed by on_reconnect()
        node.send("SSUBSCRIBE", channel)
        if not node.connected:
            return  # the connect's PING comes after this, then on_reconnect()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        node.pending.setdefault(channel, []).append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), 5)
        except TimeoutError:
            log.warning("no confirmation for SSUBSCRIBE %s on %s:%d; relying on reconnect backfill",
                        channel, *addr)

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self.channels:
            return
        self.channels.discard(channel)
        self.lost.discard(channel)
        addr = self.route.pop(channel, None)
        node = self.nodes.get(addr) if addr is not None else None
        if node is not None:
            self._drop(node, channel)

    # -- routing ---------------------------------------------------------

    def _owner(self, channel: str) -> Addr | None:
        if self.slots is None:
            return None
        return self.slots[key_slot(channel.encode())]

    def _node(self, addr: Addr) -> _Node:
        node = self.nodes.get(addr)
        if node is None:
            node = self.nodes[addr] = _Node(addr)
            node.task = asyncio.create_task(self._run(node), name=f"redis-cluster-sub-{addr[0]}:{addr[1]}")
        return node

    def _drop(self, node: _Node, channel: str) -> None:
        node.channels.discard(channel)
        if node.writer is not None:
            node.unsubscribing[channel] = node.unsubscribing.get(channel, 0) + 1
            node.send("SUNSUBSCRIBE", channel)

    def _want_remap(self) -> None:
        self.remap_wanted.set()

    async def _watch(self) -> None:
        """Read the slot map now, again when asked, and every REFRESH seconds."""
        while True:
            try:
                ok = await self._remap()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis cluster slot map refresh failed")
                ok = False
            try:
                await asyncio.wait_for(self.remap_wanted.wait(), REFRESH if ok else 0.5 + random.random())
            except TimeoutError:
                pass
            self.remap_wanted.clear()
            await asyncio.sleep(0.1)  # a burst of MOVED/sunsubscribe replies makes one refresh, not many

    async def _remap(self) -> bool:
        slots = await self._fetch_slots()
        if slots is None:
            return False
        self.slots = slots
        self.mapped.set()
        self.remaps += 1
        masters = {a for a in slots if a is not None}
        for addr in sorted(masters):
            self._node(addr)
        moved = False
        for channel in sorted(self.channels):
            new = self.slots[key_slot(channel.encode())]
            cur = self.route.get(channel)
            if new == cur and channel not in self.lost:
                continue
            if cur is not None and cur != new and cur in self.nodes and channel in self.nodes[cur].channels:
                self._drop(self.nodes[cur], channel)  # (a channel the node dropped itself needs no SUNSUBSCRIBE)
            self.route[channel] = new
            if new is None:
                continue
            node = self.nodes[new]
            node.channels.add(channel)
            if node.writer is not None:
                node.send("SSUBSCRIBE", channel)
                # A channel that had a home, or joins a live connection, may have missed messages on the way.
                moved = moved or cur is not None or node.connected
        self.lost.clear()
        for addr in [a for a in self.nodes if a not in masters]:
            node = self.nodes.pop(addr)  # no longer a master (or gone): its channels were moved above
            if node.task is not None:
                node.task.cancel()
            node.release()
        for addr in [a for a in self.publishers if a not in masters]:
            await self.publishers.pop(addr).aclose()
        if moved:
            log.info("redis cluster slots moved; resubscribed and backfilling from thread_events")
            assert self.handler is not None
            self.handler.on_reconnect()
        return True

    async def _fetch_slots(self) -> list[Addr | None] | None:
        """CLUSTER SLOTS from the first node that answers: known masters first, then the seeds."""
        candidates = [n.addr for n in self.nodes.values() if n.connected]
        candidates += [a for a in [*self.nodes, *self.seeds] if a not in candidates]
        for addr in dict.fromkeys(candidates):
            try:
                reply = await self._request(addr, "CLUSTER", "SLOTS")
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.debug("CLUSTER SLOTS from %s:%d failed: %s", *addr, exc)
                continue
            if not isinstance(reply, list):
                log.warning("CLUSTER SLOTS from %s:%d: %s", *addr, reply)
                continue
            slots: list[Addr | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
            for entry in reply:
                start, end, master = int(entry[0]), int(entry[1]), entry[2]
                host = master[0].decode() if master[0] else addr[0]  # empty host: the node we asked
                owner = (host, int(master[1]))
                for s in range(start, end + 1):
                    slots[s] = owner
            return slots
        log.warning("no Redis Cluster node answered CLUSTER SLOTS (seeds %s)", self.seeds)
        return None

    # -- connections -----------------------------------------------------

    async def _open(self, addr: Addr) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*addr), 3)
        if self.password:
            writer.write(_command(*(("AUTH", self.username, self.password) if self.username
                                    else ("AUTH", self.password))))
            rd = hiredis.Reader()
            while (reply := rd.gets()) is False:
                data = await asyncio.wait_for(reader.read(1024), 3)
                if not data:
                    break
                rd.feed(data)
            if reply is False or isinstance(reply, Exception):
                writer.close()
                raise ConnectionError(f"Redis AUTH failed: {reply}")
        return reader, writer

    async def _request(self, addr: Addr, *args: str) -> Any:
        """One command on a short-lived connection (the slot map is read this way)."""
        reader, writer = await self._open(addr)
        try:
            writer.write(_command(*args))
            rd = hiredis.Reader()
            while (reply := rd.gets()) is False:
                data = await asyncio.wait_for(reader.read(1 << 16), 3)
                if not data:
                    raise ConnectionError("closed")
                rd.feed(data)
            return reply
        finally:
            writer.close()

    async def _run(self, node: _Node) -> None:
        backoff = 0.1
        while not self.closed:
            try:
                reader, writer = await self._open(node.addr)
                node.writer = writer
                for channel in sorted(node.channels):  # one by one: channels rarely share a slot
                    node.send("SSUBSCRIBE", channel)
                node.send("PING")  # answered after the SSUBSCRIBEs: then they are all in place
                node.ready = True
                await writer.drain()
                await self._read(node, reader)
                raise ConnectionError("redis closed the connection")
            except asyncio.CancelledError:
                node.release()
                raise
            except Exception as exc:
                if node.connected or node.last_error != str(exc):
                    log.warning("redis cluster subscriber %s:%d down (%s); retrying in %.1fs",
                                *node.addr, exc, backoff)
                node.last_error = str(exc)
                node.release()
                node.failures += 1
                if node.failures >= 2:
                    self._want_remap()  # the node may have failed over or left: ask where its slots went
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, 5.0)

    def _connected(self, node: _Node) -> None:
        node.connected, node.ready = True, False
        node.failures = 0
        if node.ever:
            self.reconnects += 1
            log.info("redis cluster subscriber %s:%d reconnected; backfilling from thread_events", *node.addr)
        node.ever = True
        assert self.handler is not None
        # Anything published while this node's subscriber was away is in thread_events: let the hub read it.
        self.handler.on_reconnect()

    async def _read(self, node: _Node, reader: asyncio.StreamReader) -> None:
        handler = self.handler
        assert handler is not None
        parser = hiredis.Reader()
        pinged = False
        while True:
            try:
                data = await asyncio.wait_for(reader.read(1 << 18), PING_EVERY)
            except TimeoutError:
                if pinged:
                    raise ConnectionError("no answer to PING") from None
                node.send("PING")
                pinged = True
                continue
            if not data:
                return
            pinged = False
            parser.feed(data)
            while (msg := parser.gets()) is not False:
                if isinstance(msg, list) and msg:
                    kind = msg[0]
                    if kind == b"smessage":
                        try:
                            handler.on_message(msg[1].decode(), msg[2])
                        except Exception:
                            log.exception("hub failed on a message for %s", msg[1])
                    elif kind == b"ssubscribe":
                        for f in node.pending.pop(msg[1].decode(), []):
                            if not f.done():
                                f.set_result(None)
                    elif kind == b"sunsubscribe":
                        self._sunsubscribed(node, msg[1].decode())
                    elif kind == b"pong" and node.ready:
                        self._connected(node)
                elif msg == b"PONG" and node.ready:
                    self._connected(node)
                elif isinstance(msg, hiredis.ReplyError):
                    self._error(node, str(msg))

    def _sunsubscribed(self, node: _Node, channel: str) -> None:
        n = node.unsubscribing.get(channel, 0)
        if n > 0:  # the answer to our SUNSUBSCRIBE
            if n == 1:
                del node.unsubscribing[channel]
            else:
                node.unsubscribing[channel] = n - 1
            return
        if channel in node.channels:  # the node dropped it: its slot moved (or is moving) elsewhere
            log.info("redis cluster node %s:%d dropped %s; refreshing the slot map", *node.addr, channel)
            node.channels.discard(channel)
            if channel in self.channels:
                self.lost.add(channel)
            self._want_remap()

    def _error(self, node: _Node, text: str) -> None:
        # "MOVED 1234 host:port" for an SSUBSCRIBE sent by an outdated map: that slot's channels go elsewhere.
        if text.startswith(("MOVED", "ASK")):
            slot = int(text.split()[1])
            for channel in [c for c in node.channels if key_slot(c.encode()) == slot]:
                node.channels.discard(channel)
                for f in node.pending.pop(channel, []):
                    if not f.done():
                        f.set_result(None)
                if channel in self.channels:
                    self.lost.add(channel)
            log.info("redis cluster node %s:%d: %s; refreshing the slot map", *node.addr, text)
            self._want_remap()
        else:
            log.warning("redis cluster subscriber %s:%d error reply: %s", *node.addr, text)
