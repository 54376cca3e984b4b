"""/metrics (issue 25, finding 15): per-route activity is served to PARLEY_METRICS_ALLOW only (default loopback),
by the same client address rule as everything else (X-Forwarded-For believed from trusted proxies only)."""

from __future__ import annotations

from typing import Any

import httpx


def metrics(url: str, forwarded: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return httpx.get(url + "/metrics", headers=headers, timeout=30)


def refused(r: httpx.Response) -> bool:
    """The answer of a path that does not exist: 404 in the contract's error shape, no series."""
    return (r.status_code == 404 and r.json()["error"]["code"] == "not_found"
            and "parley_http_requests_total" not in r.text)


def test_metrics_only_to_allowed_addresses(server: Any, spawn: Any) -> None:
    """By default loopback reads /metrics and a forged X-Forwarded-For changes nothing (no trusted proxy);
    with PARLEY_METRICS_ALLOW=10.0.0.0/8 behind a trusted proxy on loopback, the forwarded client decides:
    10.1.2.3 reads it; 203.0.113.9, a forged hop before it, and the proxy's own loopback address get 404."""
    assert "parley_http_requests_total" in metrics(server.url).text
    assert "parley_http_requests_total" in metrics(server.url, "203.0.113.9").text
    srv = spawn(PARLEY_TRUSTED_PROXIES="127.0.0.1", PARLEY_METRICS_ALLOW="10.0.0.0/8, 2001:db8::/32")
    assert "parley_http_requests_total" in metrics(srv.url, "10.1.2.3").text
    assert "parley_http_requests_total" in metrics(srv.url, "2001:db8::5").text
    for forwarded in (None, "203.0.113.9", "10.1.2.3, 203.0.113.9", "not-an-address", "127.0.0.1"):
        r = metrics(srv.url, forwarded)
        assert refused(r), (forwarded, r.status_code, r.text[:200])
    r = httpx.head(srv.url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
    assert r.status_code == 404
