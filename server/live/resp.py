"""The RESP connection layer our two Redis connections share: the subscriber (live/subscriber.py) and the
publisher (live/publisher.py). Where a server is and how to log in (Endpoint, from a redis:// URL), opening a
logged-in connection (TCP or unix socket, TLS for rediss://, AUTH with the URL's ACL user and password), a
command encoded as RESP bytes, and one-off requests; replies are parsed by hiredis.

Why not redis-py for these two (bench/README.md, "subscriber" and "Coming back"): per received pub/sub
message redis-py's PubSub costs ~3x our hiredis read loop (bench/subscriber.py), and per PUBLISH its client
spends tens of µs of Python (pool, retry wrapper, packing), more than the rest of a large notification's
fan-out. Presence and the rate limiter keep redis-py (Lua scripts, pipelines, the cluster client): they are
not on the per-frame path, and their cost per call is measured in docs/presence.md.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, replace
from typing import Any

import hiredis
from redis.asyncio.connection import parse_url

CONNECT_TIMEOUT = 3.0


def command(*args: str | bytes) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


@dataclass(frozen=True)
class Endpoint:
    """Where one Redis server is and how to log in: what a subscriber (or a one-off request) needs."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None  # a unix socket instead of host:port
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    check_hostname: bool = True

    def at(self, host: str, port: int) -> Endpoint:
        """The same credentials and TLS settings for another node (a cluster's masters)."""
        return replace(self, host=host, port=port, path=None)

    def __str__(self) -> str:
        return self.path or f"{self.host}:{self.port}"


def tls_context(ca_certs: str | None = None, cert_reqs: str | None = None,
                check_hostname: bool | None = None) -> ssl.SSLContext:
    """The TLS context for rediss://, from redis-py's URL options (ssl_ca_certs, ssl_cert_reqs, ssl_check_hostname),
    so the publishing client (redis-py) and the subscriber (ours) verify the server the same way."""
    ctx = ssl.create_default_context(cafile=ca_certs)
    reqs = (cert_reqs or "required").lower()
    if reqs == "none":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = True if check_hostname is None else check_hostname
        ctx.verify_mode = ssl.CERT_OPTIONAL if reqs == "optional" else ssl.CERT_REQUIRED
    return ctx


def endpoint(url: str) -> Endpoint:
    """redis://[user:password@]host:port/db, rediss://… (TLS) or unix:///path → an Endpoint."""
    kw: dict[str, Any] = dict(parse_url(url))
    tls = None
    if url.startswith("rediss://"):
        check = kw.get("ssl_check_hostname")
        tls = tls_context(kw.get("ssl_ca_certs"), kw.get("ssl_cert_reqs"),
                          check if isinstance(check, bool) else None)
    return Endpoint(host=kw.get("host", "localhost"), port=int(kw.get("port", 6379)), path=kw.get("path"),
                    username=kw.get("username"), password=kw.get("password"), tls=tls,
                    check_hostname=tls.check_hostname if tls is not None else True)


async def _reply(reader: asyncio.StreamReader, parser: hiredis.Reader, timeout: float) -> Any:
    while (reply := parser.gets()) is False:
        data = await asyncio.wait_for(reader.read(1 << 16), timeout)
        if not data:
            raise ConnectionError("redis closed the connection")
        parser.feed(data)
    return reply


async def open_connection(ep: Endpoint, timeout: float = CONNECT_TIMEOUT,
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A logged-in connection: TCP or unix socket, TLS when the endpoint has it, AUTH when it has a password."""
    if ep.path is not None:
        opening = asyncio.open_unix_connection(ep.path)
    else:
        opening = asyncio.open_connection(ep.host, ep.port, ssl=ep.tls,
                                          server_hostname=ep.host if ep.tls is not None else None)
    reader, writer = await asyncio.wait_for(opening, timeout)
    if ep.password:
        try:
            writer.write(command("AUTH", ep.username, ep.password) if ep.username
                         else command("AUTH", ep.password))
            reply = await _reply(reader, hiredis.Reader(), timeout)
        except BaseException:
            writer.close()
            raise
        if isinstance(reply, Exception):
            writer.close()
            raise ConnectionError(f"Redis AUTH failed: {reply}")
    return reader, writer


async def request(ep: Endpoint, *args: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    """One command on a short-lived connection (a cluster's slot map is read this way)."""
    reader, writer = await open_connection(ep, timeout)
    try:
        writer.write(command(*args))
        return await _reply(reader, hiredis.Reader(), timeout)
    finally:
        writer.close()


