"""Where a webhook may point (docs/security.md "Webhooks and SSRF").

A webhook URL makes the server send requests on a moderator's behalf, so it must not reach what only the server
can reach: loopback, private networks, link-local (cloud metadata at 169.254.169.254), and every other address
that is not globally routable. The check is made twice:

- when the webhook is made: the host is resolved and EVERY address it resolves to must be allowed (422 `url`);
- at every connection: the deliverer's connector resolves through GuardedResolver (outbox/webhttp.py), which
  refuses the connection when any address is not allowed, and connects only to the addresses it checked. A name
  that resolved to a public address when the webhook was made and to 127.0.0.1 now (DNS rebinding) is refused
  then.

Redirects are never followed (a 3xx is a failed delivery), and no proxy from the environment is used.
PARLEY_WEBHOOK_ALLOW_PRIVATE=on lifts the address rule (a LAN, the tests), not the others.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

URL_MAX = 2000

Lookup = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """The URL or an address it resolves to may not be a webhook's target; str() says why."""


def allowed_address(address: str) -> bool:
    """Whether an IP address is globally routable (and so a webhook may connect to it)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse(url: str) -> tuple[str, int]:
    """(host, port) of a webhook URL: http or https, a host, no credentials; Refused otherwise."""
    if len(url) > URL_MAX:
        raise Refused(f"at most {URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("must not carry a user name or password")
    if parts.fragment:
        raise Refused("must not have a #fragment")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def system_lookup(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check(url: str, allow_private: bool, lookup: Lookup = system_lookup) -> None:
    """Refused unless every address the URL's host resolves to now is allowed."""
    host, port = parse(url)
    try:
        addresses = await lookup(host, port)
    except OSError as exc:
        raise Refused(f"{host} does not resolve: {exc.strerror or exc}") from None
    if not addresses:
        raise Refused(f"{host} does not resolve")
    if not allow_private:
        bad = [a for a in addresses if not allowed_address(a)]
        if bad:
            raise Refused(f"{host} resolves to {bad[0]}, a loopback, private or link-local address")


def literal(host: str) -> Any:
    """The IP address a URL's host spells out (aiohttp connects to one without asking the resolver), or None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
