"""Broker contract: the in-process and Redis brokers behave the same (the cluster one: tests/cluster)."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from server.live.broker import Broker, MemoryBroker, RedisBroker
from server.live.cluster import RedisClusterBroker
from support.brokers import Recorder


@pytest.fixture(params=["memory", "redis"])
async def broker(request, redis_url):
    b: Broker = {"memory": lambda: MemoryBroker(), "redis": lambda: RedisBroker(redis_url)}[request.param]()
    rec = Recorder()
    await b.start(rec)
    if isinstance(b, RedisBroker):
        async with asyncio.timeout(5):
            while not b.healthy:
                await asyncio.sleep(0.01)
    yield b, rec
    await b.close()


async def test_subscribed_channel_receives_exact_bytes_in_order(broker):
    """After subscribe() returns, every publish on the channel arrives, byte for byte, in order."""
    b, rec = broker
    await b.subscribe("parley:test:a")
    frames = [b'{"type":"event","seq":%d}' % i for i in range(50)]
    for f in frames:
        await b.publish("parley:test:a", f)
    await rec.wait(50)
    assert rec.messages == [("parley:test:a", f) for f in frames]
    assert b.healthy


async def test_unsubscribed_channel_is_not_delivered(broker):
    """Only subscribed channels are delivered, and unsubscribe stops delivery."""
    b, rec = broker
    await b.subscribe("parley:test:b")
    await b.publish("parley:test:other", b"nope")
    await b.publish("parley:test:b", b"yes")
    await rec.wait(1)
    await b.unsubscribe("parley:test:b")
    await asyncio.sleep(0.1)
    await b.publish("parley:test:b", b"after")
    await asyncio.sleep(0.3)
    assert rec.messages == [("parley:test:b", b"yes")]


def test_backends_have_exactly_the_interface_of_the_base():
    """API parity: each backend implements every public method of Broker and adds none."""
    def public(cls: type) -> set[str]:
        return {n for n, v in inspect.getmembers(cls) if not n.startswith("_") and callable(v)}
    base = public(Broker)
    for cls in (MemoryBroker, RedisBroker, RedisClusterBroker):
        assert public(cls) == base, cls
        for name in base:
            assert not getattr(getattr(cls, name), "__isabstractmethod__", False)


async def test_redis_broker_reconnects_and_reports_it(own_redis):
    """When Redis goes away and comes back, the subscriber reconnects, resubscribes and calls on_reconnect."""
    b = RedisBroker(own_redis.url)
    rec = Recorder()
    await b.start(rec)
    try:
        async with asyncio.timeout(5):
            while not b.healthy:
                await asyncio.sleep(0.01)
        await b.subscribe("parley:test:c")
        assert rec.reconnects == 1  # the first connect also asks for a backfill
        own_redis.stop()
        async with asyncio.timeout(5):
            while b.healthy:
                await asyncio.sleep(0.05)
        own_redis.start()
        async with asyncio.timeout(15):
            while not b.healthy:
                await asyncio.sleep(0.05)
        assert rec.reconnects == 2
        await b.publish("parley:test:c", b"back")
        await rec.wait(1)
        assert rec.messages == [("parley:test:c", b"back")]
    finally:
        await b.close()


class HoldingProxy:
    """A TCP proxy in front of a real Redis that can hold back what Redis sends (its replies) and cut every
    connection, so a test sees the client between "Redis has our commands" and "we have its answers"."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.released = asyncio.Event()
        self.released.set()
        self.conns: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.conns.append((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, holdable: bool) -> None:
            while data := await src.read(65536):
                if holdable:
                    await self.released.wait()
                dst.write(data)
            dst.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True), return_exceptions=True)

    def cut(self) -> None:
        for w, up in self.conns:
            w.transport.abort()
            up.transport.abort()
        self.conns.clear()

    async def close(self) -> None:
        self.cut()
        self.server.close()


async def test_on_reconnect_waits_until_every_channel_is_confirmed_again(own_redis):
    """After a reconnect, on_reconnect is not called while Redis's replies are held back (though Redis already
    carries every subscription of the new connection), and is called once they arrive; delivery goes on."""
    import redis.asyncio as aioredis

    proxy = HoldingProxy(own_redis.port)
    await proxy.start()
    b = RedisBroker(f"redis://127.0.0.1:{proxy.port}/0", ping_every=30)
    rec = Recorder()
    check = aioredis.Redis(host="127.0.0.1", port=own_redis.port)
    channels = [f"parley:test:confirm:{i}" for i in range(50)]
    await b.start(rec)
    try:
        async with asyncio.timeout(5):
            while not b.healthy:
                await asyncio.sleep(0.01)
        for ch in channels:
            await b.subscribe(ch)
        assert rec.reconnects == 1
        proxy.released.clear()
        proxy.cut()
        async with asyncio.timeout(10):  # the new connection's SUBSCRIBEs have all reached Redis
            while not all(n == 1 for _, n in await check.pubsub_numsub(*channels)):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert rec.reconnects == 1 and not b.healthy
        proxy.released.set()
        async with asyncio.timeout(5):
            while not (rec.reconnects == 2 and b.healthy):
                await asyncio.sleep(0.01)
        for ch in channels:
            await b.publish(ch, b"after")
        await rec.wait(50)
        assert sorted(c for c, _ in rec.messages) == sorted(channels)
    finally:
        await b.close()
        await check.aclose()
        await proxy.close()


def test_endpoint_reads_acl_user_password_and_tls_options_from_the_url():
    """redis://, rediss:// and unix:// URLs give the subscriber the same login and TLS checks as redis-py."""
    import ssl

    from server.live.resp import endpoint

    plain = endpoint("redis://parley:p%40ss@10.0.0.5:6380/0")
    assert (plain.host, plain.port, plain.username, plain.password, plain.tls) == ("10.0.0.5", 6380, "parley",
                                                                                   "p@ss", None)
    assert endpoint("redis://:only-pass@h/0").username is None
    verified = endpoint("rediss://h:6390/0")
    assert verified.tls is not None and verified.tls.verify_mode == ssl.CERT_REQUIRED and verified.tls.check_hostname
    unchecked = endpoint("rediss://h:6390/0?ssl_cert_reqs=none")
    assert unchecked.tls is not None and unchecked.tls.verify_mode == ssl.CERT_NONE
    no_name = endpoint("rediss://h:6390/0?ssl_check_hostname=false")
    assert no_name.tls is not None and not no_name.tls.check_hostname
    assert no_name.tls.verify_mode == ssl.CERT_REQUIRED
    assert endpoint("unix:///run/redis.sock").path == "/run/redis.sock"
