"""The broker on a Redis Cluster: sharded pub/sub (SPUBLISH/SSUBSCRIBE), one subscriber per master.

A channel lives on the node that owns its hash slot (CRC16 of the whole
name: `parley:thread:{id}` carries no hash tag, so threads spread over all
slots and nodes). Publishing routes SPUBLISH by that slot through a small
connection pool per master and follows MOVED; it does not go through
redis-py's RedisCluster, whose first initialisation fails outright while
its "default node" (the first master) is down (it runs COMMAND there), which
would stop events for every thread instead of a third of them. Subscribing
is subscriber.py's, as for RedisBroker: ONE Subscriber per master node (never
per socket or per channel), each SSUBSCRIBE confirmed.

cluster_client() makes the RedisCluster the app gives presence and the rate
limiter (ordinary commands; non-transactional pipelines are split per node).

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
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import parse_url
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from .broker import PUBLISH_TIMEOUT, Broker, Handler
from .resp import Endpoint, endpoint, request
from .subscriber import Subscriber

log = logging.getLogger(__name__)

Addr = tuple[str, int]
REFRESH = 30.0    # seconds between routine slot-map reads
TLS_OPTIONS = ("ssl_ca_certs", "ssl_cert_reqs", "ssl_check_hostname")  # redis-py URL options we pass on


def parse_urls(urls: str) -> tuple[list[Addr], Endpoint, dict[str, Any]]:
    """'redis://[user:pass@]host:port,redis://host2:port2' (or rediss://) → seed addresses, the Endpoint
    template every node is reached with (credentials and TLS of the first URL that has them), and the
    same settings as redis-py keyword arguments."""
    seeds: list[Addr] = []
    template: str | None = None
    for raw in urls.split(","):
        raw = raw.strip()
        if not raw:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"a Redis Cluster node URL must start with redis:// or rediss://, not {raw!r}")
        if parts.path not in ("", "/", "/0"):
            raise ValueError(f"a Redis Cluster has only database 0, not {raw!r}")
        seeds.append((parts.hostname or "127.0.0.1", parts.port or 6379))
        if template is None or (parts.password is not None and urlsplit(template).password is None):
            template = raw
    if not seeds or template is None:
        raise ValueError("no Redis Cluster node URL given")
    kw: dict[str, Any] = dict(parse_url(template))
    options: dict[str, Any] = {"username": kw.get("username"), "password": kw.get("password")}
    if template.startswith("rediss://"):
        options["ssl"] = True
        options.update({k: kw[k] for k in TLS_OPTIONS if k in kw})
    return seeds, endpoint(template), options


# What the app gives presence and the rate limiter for ordinary commands: one Redis, or a cluster.
RedisClient = aioredis.Redis | RedisCluster


def cluster_client(urls: str) -> RedisCluster:
    """A RedisCluster for ordinary commands (presence's keys, the rate limiter), reached like the broker's
    nodes; non-transactional pipelines are split per node by redis-py."""
    seeds, _, options = parse_urls(urls)
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in seeds], require_full_coverage=False,
                        socket_timeout=5, socket_connect_timeout=2, **options)


class RedisClusterBroker(Broker):
    """SPUBLISH routed by slot over a small pool per master; SSUBSCRIBE on one Subscriber per master."""

    name = "redis-cluster"

    def __init__(self, urls: str, ping_every: float = 10.0) -> None:
        self.seeds, self.endpoint, self.options = parse_urls(urls)
        self.ping_every = ping_every
        self.handler: Handler | None = None
        self.channels: set[str] = set()
        self.route: dict[str, Addr | None] = {}    # channel → node it is subscribed on (None: no owner known)
        self.slots: list[Addr | None] | None = None  # slot → owning master, from CLUSTER SLOTS
        self.nodes: dict[Addr, Subscriber] = {}
        self.failures: dict[Addr, int] = {}        # failed connects in a row, per node
        self.publishers: dict[Addr, aioredis.Redis] = {}  # pooled connections per master, for SPUBLISH
        self.lost: set[str] = set()                # channels a node dropped: subscribe again after a remap
        self.remap_wanted = asyncio.Event()
        self.mapped = asyncio.Event()  # set once the first slot map is in
        self.watcher: asyncio.Task[None] | None = None
        self.closed = False
        self.slots_error: str | None = None  # why the last slot-map read failed (logged when it changes)

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
        if self.watcher is not None:
            self.watcher.cancel()
            try:
                await self.watcher
            except (asyncio.CancelledError, Exception):
                pass
        for n in self.nodes.values():
            await n.close()
        for p in self.publishers.values():
            await p.aclose()

    async def publish(self, channel: str, message: bytes) -> None:
        if self.slots is None:  # just started: wait a moment for the first slot map
            try:
                await asyncio.wait_for(self.mapped.wait(), 3)
            except TimeoutError:
                raise ConnectionError("no Redis Cluster slot map (no node reachable)") from None
        addr = self._owner(channel)
        if addr is None:
            raise ConnectionError(f"no Redis Cluster node owns the slot of {channel}")
        async with asyncio.timeout(PUBLISH_TIMEOUT):
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
                host=addr[0], port=addr[1], socket_timeout=5, socket_connect_timeout=2, **self.options)
        return client

    async def subscribe(self, channel: str) -> None:
        if channel in self.channels:
            return
        self.channels.add(channel)
        addr = self._owner(channel)
        self.route[channel] = addr
        if addr is None:
            return  # no slot map yet: subscribed when it comes, followed by on_reconnect() → backfill
        await self._node(addr).subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self.channels:
            return
        self.channels.discard(channel)
        self.lost.discard(channel)
        addr = self.route.pop(channel, None)
        node = self.nodes.get(addr) if addr is not None else None
        if node is not None:
            node.unsubscribe(channel)

    # -- routing ---------------------------------------------------------

    def _owner(self, channel: str) -> Addr | None:
        if self.slots is None:
            return None
        return self.slots[key_slot(channel.encode())]

    def _node(self, addr: Addr) -> Subscriber:
        node = self.nodes.get(addr)
        if node is None:
            assert self.handler is not None  # nodes come from the slot map, read after start()
            node = self.nodes[addr] = Subscriber(
                self.endpoint.at(*addr), self.handler.on_message, lambda: self._ready(addr), sharded=True,
                ping_every=self.ping_every, name="redis cluster subscriber",
                on_dropped=lambda channel: self._dropped(addr, channel),
                on_error=lambda text: self._error(addr, text), on_down=lambda exc: self._down(addr))
            node.start()
        return node

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
        masters = {a for a in slots if a is not None}
        for addr in sorted(masters):
            self._node(addr)
        moved = False
        for channel in sorted(self.channels):
            new = self.slots[key_slot(channel.encode())]
            cur = self.route.get(channel)
            if new == cur and channel not in self.lost:
                continue
            if cur is not None and cur != new and cur in self.nodes:
                self.nodes[cur].unsubscribe(channel)  # (a channel the node dropped itself is no longer there)
            self.route[channel] = new
            if new is None:
                continue
            node = self.nodes[new]
            # A channel that had a home, or joins a live connection, may have missed messages on the way.
            if node.add(channel) is not None:
                moved = moved or cur is not None or node.connected
        self.lost.clear()
        for addr in [a for a in self.nodes if a not in masters]:
            self.nodes.pop(addr).stop()  # no longer a master (or gone): its channels were moved above
            self.failures.pop(addr, None)
        for addr in [a for a in self.publishers if a not in masters]:
            await self.publishers.pop(addr).aclose()
        if moved:
            log.info("redis cluster slots moved; resubscribed and backfilling from thread_events")
            assert self.handler is not None
            self.handler.on_reconnect()
        return True

    async def _fetch_slots(self) -> list[Addr | None] | None:
        """CLUSTER SLOTS from the first node that answers: known masters first, then the seeds."""
        candidates = [a for a, n in self.nodes.items() if n.connected]
        candidates += [a for a in [*self.nodes, *self.seeds] if a not in candidates]
        errors: list[str] = []
        for addr in dict.fromkeys(candidates):
            try:
                reply = await request(self.endpoint.at(*addr), "CLUSTER", "SLOTS")
            except (TimeoutError, OSError, ConnectionError) as exc:
                log.debug("CLUSTER SLOTS from %s:%d failed: %s", *addr, exc)
                errors.append(str(exc) or exc.__class__.__name__)
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
            self.slots_error = None
            return slots
        # Once per distinct failure (the watcher retries every second or so): a wrong password says so.
        text = "; ".join(dict.fromkeys(errors)) or "no node known"
        if text != self.slots_error:
            log.warning("no Redis Cluster node answered CLUSTER SLOTS (seeds %s): %s; retrying",
                        ", ".join(f"{h}:{p}" for h, p in self.seeds), text)
        self.slots_error = text
        return None

    # -- subscriber callbacks --------------------------------------------

    def _ready(self, addr: Addr) -> None:
        self.failures[addr] = 0
        assert self.handler is not None
        # Anything published while this node's subscriber was away is in thread_events: let the hub read it.
        self.handler.on_reconnect()

    def _down(self, addr: Addr) -> None:
        self.failures[addr] = self.failures.get(addr, 0) + 1
        if self.failures[addr] >= 2:
            self._want_remap()  # the node may have failed over or left: ask where its slots went

    def _dropped(self, addr: Addr, channel: str) -> None:
        """The node dropped a channel by itself: its slot moved (or is moving) elsewhere."""
        log.info("redis cluster node %s:%d dropped %s; refreshing the slot map", *addr, channel)
        if channel in self.channels:
            self.lost.add(channel)
        self._want_remap()

    def _error(self, addr: Addr, text: str) -> None:
        # "MOVED 1234 host:port" for an SSUBSCRIBE sent by an outdated map: that slot's channels go elsewhere.
        node = self.nodes.get(addr)
        if text.startswith(("MOVED", "ASK")) and node is not None:
            slot = int(text.split()[1])
            for channel in [c for c in node.channels if key_slot(c.encode()) == slot]:
                node.forget(channel)
                if channel in self.channels:
                    self.lost.add(channel)
            log.info("redis cluster node %s:%d: %s; refreshing the slot map", *addr, text)
            self._want_remap()
        else:
            log.warning("redis cluster subscriber %s:%d error reply: %s", *addr, text)
