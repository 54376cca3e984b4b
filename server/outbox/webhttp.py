"""The webhook deliverer's HTTP client (aiohttp): a session whose every connection resolves through
GuardedResolver, and one POST.

Apart from targets.py (the address rules) so that aiohttp is imported only when a process first sends a
delivery: importing it builds SSL contexts and cost every `parley serve` start ~100 ms of CPU, though most
processes never send one (tests/test_startup.py checks a start goes without it).
"""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .targets import Lookup, allowed_address, system_lookup


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for webhook connections: every address of the host checked at connect time."""

    def __init__(self, allow_private: bool, lookup: Lookup = system_lookup) -> None:
        self.allow_private = allow_private
        self.lookup = lookup

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        addresses = await self.lookup(host, port)
        if not addresses:
            raise OSError(f"{host} does not resolve")
        if not self.allow_private and any(not allowed_address(a) for a in addresses):
            raise OSError(f"{host} resolves to a loopback, private or link-local address now: refused")
        out: list[ResolveResult] = []
        for a in addresses:
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            out.append({"hostname": host, "host": a, "port": port, "family": fam, "proto": 0,
                        "flags": socket.AI_NUMERICHOST})
        return out

    async def close(self) -> None:
        return None


def session(allow_private: bool, user_agent: str) -> aiohttp.ClientSession:
    """The HTTP client: every connection through the guarded resolver, no environment proxy."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow_private), use_dns_cache=False, limit=100,
                                     limit_per_host=20)
    return aiohttp.ClientSession(connector=connector, trust_env=False, headers={"User-Agent": user_agent})


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str],
               timeout: float) -> tuple[int | None, str | None]:
    """(HTTP status or None, None when answered 2xx else why not). Redirects are not followed."""
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            await response.content.read(4096)  # a little of the answer, never all of an endless one
            if 200 <= response.status < 300:
                return response.status, None
            return response.status, f"answered {response.status}"
    except TimeoutError:
        return None, f"no answer within {timeout:g} s"
    except (aiohttp.ClientError, OSError) as exc:
        return None, str(exc) or type(exc).__name__
