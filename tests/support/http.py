"""httpx's one-off functions and Client, for a URL of a real server or of an in-process app alike.

`from support import http` then `http.get(url)`, `http.post(url, json=…)`, `http.Client(base_url=url)`:
for an app registered in support.api.TRANSPORTS (tests/support/inprocess.py) the request goes through its
ASGI transport, for any other URL through the network as httpx does.
"""

from __future__ import annotations

from typing import Any

import httpx

from .api import TRANSPORTS


def transport_for(url: str) -> httpx.BaseTransport | None:
    for base, transport in TRANSPORTS.items():
        if url == base or url.startswith(base + "/"):
            return transport
    return None


def Client(base_url: str = "", **kwargs: Any) -> httpx.Client:
    return httpx.Client(base_url=base_url, transport=transport_for(base_url), **kwargs)


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    transport = transport_for(url)
    if transport is None:
        return httpx.request(method, url, **kwargs)
    follow = kwargs.pop("follow_redirects", False)
    timeout = kwargs.pop("timeout", 5.0)
    with httpx.Client(transport=transport, follow_redirects=follow, timeout=timeout) as client:
        return client.request(method, url, **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> httpx.Response:
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs: Any) -> httpx.Response:
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs: Any) -> httpx.Response:
    return request("DELETE", url, **kwargs)
