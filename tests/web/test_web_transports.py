"""The page's transports (issue 32): where websockets are refused, the page listens over server-sent events by
itself and the thread is live all the same (writes over HTTP as always). Real Chromium, real `parley serve`."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from .conftest import Site


def test_websockets_refused_the_page_goes_live_over_sse(site: Site, readers: Any) -> None:
    """Every /ws upgrade is cut before its hello: the header still comes to "online" (transport sse), someone
    else's response appears live, and the reader's own response posts once."""
    asker, _ = site.client("Asker")
    tid = site.thread(asker)["thread"]["id"]
    reader = readers()
    reader.sign_up("Ada Proxied")
    sockets: list[str] = []

    def refuse(ws: Any) -> None:
        sockets.append(ws.url)
        ws.close(code=1011)

    reader.context.route_web_socket("**/ws", refuse)
    streams: list[str] = []
    reader.page.on("request", lambda r: streams.append(r.url) if "/api/stream" in r.url else None)
    page = reader.open_thread(tid)  # waits for the header's "online"
    status = page.locator('[data-testid="connection-status"]')
    expect(status).to_have_attribute("data-transport", "sse")
    assert len(sockets) >= 2 and any(f"thread={tid}" in u for u in streams)
    site.reply(asker, tid, "Sent while you listen over HTTP")
    expect(page.locator('[data-testid="response"]', has_text="Sent while you listen over HTTP")).to_have_count(1)
    box = page.locator('[data-testid="reply-input"]')
    box.fill("My answer, over HTTP")
    page.locator('[data-testid="reply-submit"]').click()
    expect(page.locator('[data-testid="response"]', has_text="My answer, over HTTP")).to_have_count(1)
    expect(status).to_have_attribute("data-state", "online")
    assert not reader.errors
