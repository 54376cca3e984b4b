"""HTTP clients for the tests: one per user (cookies kept), unique names, a new thread."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

# base URL → transport, for apps in this process (support/inprocess.py registers them): an Api of one
# reaches it without a socket, so the API tests' helpers work unchanged against either kind.
TRANSPORTS: dict[str, httpx.BaseTransport] = {}


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Api:
    """A signed-in (or guest) HTTP client for one user: of a real server, or of an in-process app
    (support/inprocess.py) when base_url is one."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, transport=TRANSPORTS.get(base_url))
        self.user: dict[str, Any] | None = None

    def sign_up(self, username: str | None = None, password: str = "correct horse battery",
                display_name: str | None = None) -> Api:
        username = username or unique()
        body: dict[str, Any] = {"username": username, "password": password}
        if display_name:
            body["display_name"] = display_name
        r = self.http.post("/api/users", json=body)
        assert r.status_code == 201, r.text
        self.user = r.json()["user"]
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)

    @property
    def session_cookie(self) -> str:
        return self.http.cookies.get("parley_session") or ""


def new_thread(api: Api, category: str, title: str = "A question", body: str = "What do you think?") -> dict[str, Any]:
    r = api.post("/api/threads", json={"category": category, "title": title, "body": body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
