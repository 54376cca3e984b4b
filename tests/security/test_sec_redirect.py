"""The sign-in page's `?next=` (issue 13, finding 9): only same-origin paths, as the URL parser reads them.

The page's own safeNext() (web/js/views/auth.js) runs under Node with the page's location, so the
test exercises the shipped code without a browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

AUTH_JS = Path(__file__).resolve().parents[2] / "web" / "js" / "views" / "auth.js"
ORIGIN = "http://127.0.0.1:8000"

CASES = {
    "/%5Cexample.org": "/",           # "/\example.org": browsers read it as //example.org
    "/\\example.org": "/",
    "//example.org/x": "/",
    "/\t/example.org": "/",           # the parser drops tabs and newlines: //example.org
    "https://example.org/": "/",
    "javascript:alert(1)": "/",
    "http://127.0.0.1:8000/t/5": "/",  # same origin, but not a path: refused all the same
    "/signin?next=/x": "/",
    "/t/5?sort=top#post-9": "/t/5?sort=top#post-9",
    "/c/cooking": "/c/cooking",
}


def run_safe_next(nexts: list[str]) -> list[str]:
    source = AUTH_JS.read_text()
    m = re.search(r"^function safeNext\(\) \{.*?^\}$", source, re.S | re.M)
    assert m, "safeNext() not found in auth.js"
    script = f"const ORIGIN = {json.dumps(ORIGIN)};\n" + m.group(0) + """
const out = [];
for (const search of JSON.parse(process.argv[1])) {
  globalThis.location = new URL(ORIGIN + '/signin' + search);
  out.push(safeNext());
}
console.log(JSON.stringify(out));
"""
    searches = ["?next=" + (n if n.startswith("/%") else quote(n, safe="")) for n in nexts]
    r = subprocess.run(["node", "-e", script, json.dumps(searches)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node to run the page's code")
def test_next_parameter_only_leads_to_same_origin_paths() -> None:
    """After sign-in the page goes only to a same-origin path: /\\host, //host, tabs, schemes all land on /."""
    got = run_safe_next(list(CASES))
    assert dict(zip(CASES, got, strict=True)) == CASES


SLASH_REDIRECTS = {"/static": "/static/", "/api/threads/": "/api/threads", "/api/categories/": "/api/categories",
                   "/api/threads/1/": "/api/threads/1", "/healthz/": "/healthz", "/signin/": "/signin",
                   "/api/threads///?limit=5&x=%2F": "/api/threads?limit=5&x=%2F", "/metrics/": "/metrics",
                   "/api/users/%C3%A9l%C3%A8ve/": "/api/users/%C3%A9l%C3%A8ve", "/api/threads%2F": "/api/threads"}
NO_REDIRECT = ["//evil.example/", "//evil.example", "/\\evil.example/", "/%2F%2Fevil.example/", "/static/nothing/",
               "/api/nothing/", "/%5Cevil.example"]


def test_trailing_slash_redirects_never_follow_the_host_header(server: Any) -> None:
    """With a forged Host (and X-Forwarded-Host), a trailing-slash redirect is 307 to a relative path on this
    site, for routes and mounts alike; paths a browser would read as another host are not redirected at all."""
    for host in ("evil.example", "evil.example:8080", "127.0.0.1@evil.example"):
        headers = {"Host": host, "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
        for path, location in SLASH_REDIRECTS.items():
            for method in ("GET", "POST"):
                r = httpx.request(method, server.url + path, headers=headers, follow_redirects=False, timeout=30)
                assert r.status_code == 307 and r.headers["location"] == location, (host, path, method, r.headers)
        for path in NO_REDIRECT:
            r = httpx.get(server.url + path, headers=headers, follow_redirects=False, timeout=30)
            assert not 300 <= r.status_code < 400, (host, path, r.status_code, r.headers)
