"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, against the
real `parley serve` process of tests/conftest.py (`server`, with its moderator-made
category from `forum`). Chromium is /usr/bin/chromium, never a downloaded browser.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PASSWORD = "correct-horse-battery"

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test file. Not for the session: the sync Playwright API keeps an event loop running
    in the main thread until it stops, so every later file on the same pytest-xdist worker that runs an
    event loop (asyncio.run, an async test) would fail with "cannot be called from a running event loop"."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    sync_api.expect.set_options(timeout=15_000)


# The page keeps one live connection per browser in a shared worker (web/js/liveclient.js). A test that
# reaches into the page's own WebSocket (wraps window.WebSocket, or Playwright's route_web_socket, which mocks
# it in the page and cannot reach a worker) removes SharedWorker first: the page then holds the socket itself,
# as the leading tab of the BroadcastChannel fallback, and runs the same Live (web/js/live.js) in the page.
NO_SHARED_WORKER = "delete window.SharedWorker;"
SHARED_WORKER = "/static/js/sharedlive.js"

def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


class Site:
    """Helpers that talk to the server over HTTP (users, threads, replies)."""

    def __init__(self, server: Any, category: str, mod: Any) -> None:
        self.server = server
        self._category = category
        self.mod = mod  # a moderator's signed-in client (support.api.Api)

    @property
    def base_url(self) -> str:
        return str(self.server.url)

    def client(self, display_name: str | None = None, username: str | None = None) -> tuple[httpx.Client, dict]:
        """A signed-in HTTP client for a brand-new user."""
        c = httpx.Client(base_url=self.base_url, timeout=20)
        body: dict[str, Any] = {"username": username or unique("u"), "password": PASSWORD}
        if display_name:
            body["display_name"] = display_name
        r = c.post("/api/users", json=body)
        assert r.status_code == 201, r.text
        return c, r.json()["user"]

    def category(self) -> str:
        return self._category

    def category_path(self, *names: str) -> str:
        """Create nested categories (as the moderator); returns the innermost slug."""
        parent = None
        for name in names:
            slug = unique(name.lower().replace(" ", "-")[:20] + "-")
            body: dict[str, Any] = {"slug": slug, "name": name}
            if parent:
                body["parent"] = parent
            r = self.mod.post("/api/categories", json=body)
            assert r.status_code == 201, r.text
            parent = slug
        assert parent
        return parent

    def thread(self, client: httpx.Client, title: str = "", body: str = "", category: str = "") -> dict:
        r = client.post("/api/threads", json={
            "category": category or self.category(),
            "title": title or f"Question {secrets.token_hex(2)}: how do live threads work?",
            "body": body or "I'd like to understand how replies show up without reloading.",
        })
        assert r.status_code == 201, r.text
        return r.json()

    def reply(self, client: httpx.Client, thread_id: int, body: str, parent_id: int | None = None) -> dict:
        payload: dict[str, Any] = {"body": body}
        if parent_id:
            payload["parent_id"] = parent_id
        r = client.post(f"/api/threads/{thread_id}/posts", json=payload)
        assert r.status_code in (200, 201), r.text
        return r.json()["post"]


@pytest.fixture
def site(server: Any, forum: dict[str, Any]) -> Site:
    """The module's real server (tests/conftest.py `server`) and its test category."""
    return Site(server, forum["category"], forum["mod"])


class Reader:
    """A browser context (one person) with one page."""

    def __init__(self, browser: Any, site: Site, *, viewport: tuple[int, int] = (1280, 900),
                 color_scheme: str = "light") -> None:
        self.site = site
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                           color_scheme=color_scheme, base_url=site.base_url)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.user: dict | None = None
        # Requests in flight, for network_idle(): Playwright's "networkidle" never comes to a page that starts
        # the shared worker (web/js/sharedlive.js): the worker's script request is reported to the page but its
        # end only to the worker.
        self.inflight: set[Any] = set()
        self.page.on("request", lambda r: self.inflight.add(r) if not r.url.endswith(SHARED_WORKER) else None)
        self.page.on("requestfinished", lambda r: self.inflight.discard(r))
        self.page.on("requestfailed", lambda r: self.inflight.discard(r))

    def _dialog(self, d: Any) -> None:
        self.dialogs.append(d.message)
        d.dismiss()

    def sign_up(self, display_name: str) -> dict:
        """Create an account through the API of this context (the cookie lands in the browser)."""
        r = self.context.request.post("/api/users", data={
            "username": unique("w"), "password": PASSWORD, "display_name": display_name})
        assert r.status == 201, r.text()
        self.user = r.json()["user"]
        return self.user

    def open_thread(self, thread_id: int) -> Any:
        self.page.goto(f"/t/{thread_id}")
        self.wait_live()
        sync_api.expect(self.page.locator('[data-testid="question"]')).to_have_count(1)
        return self.page

    def wait_live(self) -> None:
        status = self.page.locator('[data-testid="connection-status"]')
        sync_api.expect(status).to_have_attribute("data-state", "online")

    def network_idle(self) -> None:
        """Playwright's wait_for_load_state("networkidle") (no request for 500 ms), the shared worker's aside."""
        quiet = 0
        for _ in range(300):  # a bound on a failure (30 s), not a speed
            quiet = quiet + 1 if not self.inflight else 0
            if quiet > 5:
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"requests still in flight: {[r.url for r in self.inflight]}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def readers(browser: Any, site: Site) -> Iterator[Any]:
    """Factory of Readers; every one is closed after the test."""
    made: list[Reader] = []

    def make(**kw: Any) -> Reader:
        r = Reader(browser, site, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        try:
            r.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
