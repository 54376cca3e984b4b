"""Broker contract for RedisClusterBroker against a real 3-node Redis Cluster (sharded pub/sub)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.crc import key_slot

from cluster_support import RedisClusterNodes, command
from server.live.cluster import RedisClusterBroker
from support.brokers import Recorder


async def until(pred: Any, timeout: float = 15, what: str = "condition") -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)


def thread_channels(cluster: RedisClusterNodes) -> dict[int, str]:
    """One `parley:thread:{id}` channel per node (by port), the owner asked of the cluster itself."""
    base = int(uuid.uuid4().int % 10**9)
    found: dict[int, str] = {}
    for i in range(200):
        ch = f"parley:thread:{base + i}"
        port = cluster.owner_port(ch)
        found.setdefault(port, ch)
        if len(found) == len(cluster.ports):
            return found
    raise AssertionError("could not find a channel on every node")


@pytest.fixture()
async def cluster_broker(redis_cluster: RedisClusterNodes):
    b = RedisClusterBroker(redis_cluster.url)
    rec = Recorder()
    await b.start(rec)
    await until(lambda: b.healthy, what="broker healthy")
    yield b, rec
    await b.close()


async def test_subscribed_channel_receives_exact_bytes_in_order(cluster_broker):
    """After subscribe() returns, every SPUBLISH on the channel arrives, byte for byte, in order."""
    b, rec = cluster_broker
    ch = f"parley:thread:{uuid.uuid4().int % 10**9}"
    await b.subscribe(ch)
    frames = [b'{"type":"event","seq":%d}' % i for i in range(50)] + [bytes(range(256)), b"", b"\r\n*1\r\n"]
    for f in frames:
        await b.publish(ch, f)
    await rec.wait(lambda: len(rec.messages) >= len(frames))
    assert rec.messages == [(ch, f) for f in frames]
    assert b.healthy


async def test_channels_on_every_node_share_one_connection_per_node(cluster_broker, redis_cluster):
    """Channels owned by all three nodes are routed by CRC16 slot and carried by ONE connection per node."""
    b, rec = cluster_broker
    by_port = thread_channels(redis_cluster)
    extra = [f"parley:thread:{uuid.uuid4().int % 10**9}" for _ in range(30)]
    for ch in [*by_port.values(), *extra]:
        await b.subscribe(ch)
    for port, ch in by_port.items():
        assert b.route[ch] == ("127.0.0.1", port)  # our slot map agrees with CLUSTER KEYSLOT/SLOTS
    assert len(b.nodes) == 3
    for ch in [*by_port.values(), *extra]:
        await b.publish(ch, ch.encode())
    everything = {*by_port.values(), *extra}
    await rec.wait(lambda: {c for c, _ in rec.messages} == everything)
    assert sorted(m for _, m in rec.messages) == sorted(c.encode() for c in everything)

    def subscribers(port: int) -> list[int]:
        listing = command(port, "CLIENT", "LIST")
        assert isinstance(listing, bytes)
        counts = [int(f.split(b"=")[1]) for line in listing.splitlines() for f in line.split()
                  if f.startswith(b"ssub=")]
        return [n for n in counts if n > 0]

    def expected(port: int) -> int:
        return sum(1 for ch in everything if b.route[ch] == ("127.0.0.1", port)) + (
            1 if b.route.get("parley:presence") == ("127.0.0.1", port) else 0)

    async with asyncio.timeout(5):  # connections of brokers closed by earlier tests may take a moment to go
        while [subscribers(p) for p in redis_cluster.ports] != [[expected(p)] for p in redis_cluster.ports]:
            await asyncio.sleep(0.05)


async def test_unsubscribed_channel_is_not_delivered(cluster_broker):
    """Only subscribed channels are delivered, and unsubscribe stops delivery."""
    b, rec = cluster_broker
    ch = f"parley:thread:{uuid.uuid4().int % 10**9}"
    await b.subscribe(ch)
    await b.publish(f"parley:thread:{uuid.uuid4().int % 10**9}", b"nope")
    await b.publish(ch, b"yes")
    await rec.wait(lambda: len(rec.messages) >= 1)
    await b.unsubscribe(ch)
    await asyncio.sleep(0.1)
    await b.publish(ch, b"after")
    await asyncio.sleep(0.3)
    assert rec.messages == [(ch, b"yes")]
    assert ch not in b.route and all(ch not in n.channels for n in b.nodes.values())


async def test_one_node_restarts_on_reconnect_called_and_delivery_resumes(cluster_broker, redis_cluster):
    """One node killed: the others keep delivering; restarted: on_reconnect is called and its channels deliver."""
    b, rec = cluster_broker
    by_port = thread_channels(redis_cluster)
    for ch in by_port.values():
        await b.subscribe(ch)
    victim = redis_cluster.ports.index(next(iter(by_port)))
    victim_ch = by_port[redis_cluster.ports[victim]]
    before = rec.reconnects
    redis_cluster.kill(victim)
    try:
        await until(lambda: not b.healthy, 5)
        assert not b.nodes[("127.0.0.1", redis_cluster.ports[victim])].connected
        survivors = [ch for ch in by_port.values() if ch != victim_ch]
        for ch in survivors:
            await b.publish(ch, b"while one node is down")
        await rec.wait(lambda: all(rec.on(ch) == [b"while one node is down"] for ch in survivors))
    finally:
        redis_cluster.restart(victim)  # in this thread (see cluster_support._die_with_parent); takes ~1 s
    await until(lambda: b.healthy, 20)
    assert rec.reconnects > before
    await b.publish(victim_ch, b"back")
    await rec.wait(lambda: rec.on(victim_ch) == [b"back"])


def _ids(cluster: RedisClusterNodes) -> dict[int, str]:
    return {p: command(p, "CLUSTER", "MYID").decode() for p in cluster.ports}  # type: ignore[union-attr]


def _move_slot(cluster: RedisClusterNodes, slot: int, src: int, dst: int) -> None:
    """Hand an empty slot from node src to node dst (ports), the way redis-cli --cluster reshard does."""
    ids = _ids(cluster)
    assert command(src, "CLUSTER", "COUNTKEYSINSLOT", str(slot)) == 0
    assert command(dst, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[src]) == b"OK"
    assert command(src, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[dst]) == b"OK"
    for p in (dst, src, *(q for q in cluster.ports if q not in (src, dst))):
        assert command(p, "CLUSTER", "SETSLOT", str(slot), "NODE", ids[dst]) == b"OK"


async def test_slot_moved_to_another_node_is_followed(cluster_broker, redis_cluster):
    """A slot moved to another node: resubscribed on the new owner, on_reconnect called, delivery goes on."""
    b, rec = cluster_broker
    by_port = thread_channels(redis_cluster)
    src, ch = next(iter(by_port.items()))
    dst = next(p for p in redis_cluster.ports if p != src)
    slot = key_slot(ch.encode())
    await b.subscribe(ch)
    await b.publish(ch, b"before")
    await rec.wait(lambda: rec.on(ch) == [b"before"])
    before = rec.reconnects
    _move_slot(redis_cluster, slot, src, dst)
    try:
        await until(lambda: b.route.get(ch) == ("127.0.0.1", dst) and b.healthy, 10)
        assert rec.reconnects > before  # channels moved: the hub backfills what may have slipped by
        await until(lambda: redis_cluster.owner_port(ch) == dst)
        await b.publish(ch, b"after the move")
        await rec.wait(lambda: rec.on(ch) == [b"before", b"after the move"])
    finally:
        _move_slot(redis_cluster, slot, dst, src)
    await until(lambda: b.route.get(ch) == ("127.0.0.1", src) and b.healthy, 10)


async def test_subscribe_with_a_stale_slot_map_follows_moved(cluster_broker, redis_cluster):
    """SSUBSCRIBE sent by a stale slot map gets MOVED: map refreshed, subscribed on the right node, backfill."""
    b, rec = cluster_broker
    by_port = thread_channels(redis_cluster)
    right, ch = next(iter(by_port.items()))
    wrong = next(p for p in redis_cluster.ports if p != right)
    assert b.slots is not None
    b.slots[key_slot(ch.encode())] = ("127.0.0.1", wrong)  # as if the slot had moved since our last read
    before = rec.reconnects
    await b.subscribe(ch)
    await until(lambda: b.route.get(ch) == ("127.0.0.1", right) and b.healthy, 10)
    assert rec.reconnects > before
    await b.publish(ch, b"found it")
    await rec.wait(lambda: rec.on(ch) == [b"found it"])
